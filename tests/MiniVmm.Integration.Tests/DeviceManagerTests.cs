using MiniVmm.Core.Bus;
using MiniVmm.Core.State;
using MiniVmm.Devices;
using MiniVmm.Devices.Legacy;
using MiniVmm.Machine.Devices;
using MiniVmm.Machine.State;

namespace MiniVmm.Integration.Tests;

/// <summary>The device manager without KVM: boot and restore through the same line, and every way a saved device
/// state can be wrong is a <see cref="StateRestoreException"/> that names the section.</summary>
public sealed class DeviceManagerTests
{
    private sealed class NullSink : IByteSink
    {
        public void Write(ReadOnlySpan<byte> data) { }
    }

    private sealed class NoLine : IInterruptLine
    {
        public void SetLevel(bool asserted) { }
    }

    /// <summary>A stateless device as a future author would declare one.</summary>
    private sealed class Constant : IBusDevice, IStateless
    {
        public static string StatelessReason => "reads a constant";
        public void Read(ulong offset, Span<byte> data) => data.Fill(0x5a);
        public void Write(ulong offset, ReadOnlySpan<byte> data) { }
    }

    /// <summary>The line Vm.Devices.cs has for each device, against a manager that boots or restores.</summary>
    private static (DeviceManager Manager, Serial8250 Serial, ControlPort Control) Build(IReadOnlyList<DeviceState>? restored)
    {
        var manager = new DeviceManager(new Bus(BusKind.Pio), new Bus(BusKind.Mmio), restored);
        var serial = manager.AddPio<Serial8250, Serial8250.Wiring>("serial-com1", Serial8250.Com1Port, Serial8250.RegisterWindowSize,
            new(new NullSink(), new NoLine()));
        var control = manager.AddPio<ControlPort, Action>("control", ControlPort.DefaultPort, ControlPort.RegisterWindowSize, () => { });
        manager.AddStatelessPio("constant", 0x100, 1, new Constant());
        manager.Complete();
        return (manager, serial, control);
    }

    private static IReadOnlyList<DeviceState> SavedStates()
    {
        var (manager, serial, control) = Build(null);
        serial.Write(7, [0x42]);       // scratch register
        serial.Write(3, [0x1b]);       // LCR
        control.SetStatus(2);
        return manager.Save();
    }

    [Fact]
    public void Restore_rebuilds_what_boot_built_and_saved()
    {
        var saved = SavedStates();
        saved.Select(s => s.Id).Should().Equal("serial-com1", "control");
        saved.Should().AllSatisfy(s => s.Version.Should().Be(1));

        var (manager, serial, control) = Build(saved);
        manager.IsRestoring.Should().BeTrue();
        serial.Save().Scratch.Should().Be(0x42);
        serial.Save().LineControl.Should().Be(0x1b);
        control.Status.Should().Be(2u);
        manager.Save().Select(s => s.Data).Should().BeEquivalentTo(saved.Select(s => s.Data), o => o.WithStrictOrdering());
    }

    [Fact]
    public void Every_bus_window_is_described_as_persisted_or_stateless()
    {
        var pio = new Bus(BusKind.Pio);
        var manager = new DeviceManager(pio, new Bus(BusKind.Mmio), null);
        manager.AddPio<DebugExitPort, Action<uint>>("debug-exit", DebugExitPort.DefaultPort, DebugExitPort.RegisterWindowSize, _ => { });
        manager.AddStatelessPio("constant", 0x100, 1, new Constant());
        manager.Complete();
        pio.Ranges.Select(r => manager.Describe(r.Device)).Should().Equal("section 'dev.debug-exit'", "stateless: reads a constant");
        manager.Describe(new Constant()).Should().BeNull("a device the manager never added is neither");
    }

    public static TheoryData<string, Func<IReadOnlyList<DeviceState>, IReadOnlyList<DeviceState>>, string> BadStates => new()
    {
        { "newer version", s => [s[0] with { Version = 2 }, s[1]], "section 'dev.serial-com1' has version 2; this MiniVmm reads version 1" },
        { "version 0", s => [s[0], s[1] with { Version = 0 }], "section 'dev.control' has version 0; this MiniVmm reads version 1" },
        { "missing", s => [s[1]], "the snapshot has no section 'dev.serial-com1'" },
        { "unknown device", s => [.. s, new DeviceState("virtio-net0", 1, [])], "section 'dev.virtio-net0' belongs to no device of this VM" },
        { "stateless device given a state", s => [.. s, new DeviceState("constant", 1, [])], "section 'dev.constant' belongs to no device" },
        { "twice", s => [s[0], s[0], s[1]], "the snapshot has section 'dev.serial-com1' twice" },
        { "truncated", s => [s[0] with { Data = s[0].Data[..^1] }, s[1]], "section 'dev.serial-com1': invalid Serial8250 state: 10 bytes" },
        { "longer", s => [s[0], s[1] with { Data = [.. s[1].Data, 0] }], "section 'dev.control': invalid ControlPort state: 5 bytes" },
        { "reserved IER bits", s => [s[0] with { Data = [0xf0, .. s[0].Data[1..]] }, s[1]], "section 'dev.serial-com1': invalid Serial8250 state: IER 0xf0" },
    };

    [Theory]
    [MemberData(nameof(BadStates))]
    public void A_bad_device_state_is_refused_naming_its_section(string name, Func<IReadOnlyList<DeviceState>, IReadOnlyList<DeviceState>> corrupt, string message)
    {
        var bad = corrupt(SavedStates());
        FluentActions.Invoking(() => Build(bad)).Should().Throw<StateRestoreException>(name).WithMessage($"*{message}*");
    }

    [Fact]
    public void Ids_are_unique_and_plain()
    {
        var manager = new DeviceManager(new Bus(BusKind.Pio), new Bus(BusKind.Mmio), null);
        manager.AddPio<ControlPort, Action>("control", ControlPort.DefaultPort, ControlPort.RegisterWindowSize, () => { });
        FluentActions.Invoking(() => manager.Add<ControlPort, Action>("control", () => { })).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => manager.Add<ControlPort, Action>("a.b", () => { })).Should().Throw<ArgumentException>();
        manager.Complete();
        FluentActions.Invoking(() => manager.Add<ControlPort, Action>("late", () => { })).Should().Throw<InvalidOperationException>();
    }
}
