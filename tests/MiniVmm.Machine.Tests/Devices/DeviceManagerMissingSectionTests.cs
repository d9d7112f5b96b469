using MiniVmm.Core.Bus;
using MiniVmm.Core.State;
using MiniVmm.Devices.Legacy;
using MiniVmm.Machine.Devices;
using MiniVmm.Machine.State;

namespace MiniVmm.Machine.Tests.Devices;

/// <summary>A restore from a snapshot without a device's section: refused by default, a fresh device for one that
/// declares <see cref="IPersistent{TSelf,TArgs}.CreatedFreshWhenAbsent"/> (a device added after such snapshots were
/// written, like the CMOS RTC).</summary>
public sealed class DeviceManagerMissingSectionTests
{
    /// <summary>A persistent device that keeps the interface's default (a missing section is a bad file).</summary>
    private sealed class Strict : IBusDevice, IPersistent<Strict, byte>
    {
        public byte Value { get; private init; }
        public bool Restored { get; private init; }
        public static ushort StateVersion => 1;
        public static Strict Create(byte args) => new() { Value = args };
        public static Strict RestoreState(byte args, ushort version, ReadOnlySpan<byte> state) =>
            state.Length == 1 ? new Strict { Value = state[0], Restored = true } : throw new PersistentStateException(nameof(Strict), "1 byte expected");
        public byte[] SaveState() => [Value];
        public void Read(ulong offset, Span<byte> data) => data.Fill(Value);
        public void Write(ulong offset, ReadOnlySpan<byte> data) { }
    }

    /// <summary>The same device, declaring that a fresh one stands in for a missing section.</summary>
    private sealed class Lenient : IBusDevice, IPersistent<Lenient, byte>
    {
        public byte Value { get; private init; }
        public bool Restored { get; private init; }
        public static ushort StateVersion => 1;
        public static bool CreatedFreshWhenAbsent => true;
        public static Lenient Create(byte args) => new() { Value = args };
        public static Lenient RestoreState(byte args, ushort version, ReadOnlySpan<byte> state) =>
            state.Length == 1 ? new Lenient { Value = state[0], Restored = true } : throw new PersistentStateException(nameof(Lenient), "1 byte expected");
        public byte[] SaveState() => [Value];
        public void Read(ulong offset, Span<byte> data) => data.Fill(Value);
        public void Write(ulong offset, ReadOnlySpan<byte> data) { }
    }

    private static DeviceManager Restoring(params DeviceState[] states) =>
        new(new Bus(BusKind.Pio), new Bus(BusKind.Mmio), states);

    [Fact]
    public void The_default_still_refuses_a_missing_section()
    {
        IsFreshWhenAbsent<Strict, byte>().Should().BeFalse();
        var manager = Restoring();
        FluentActions.Invoking(() => manager.AddPio<Strict, byte>("strict", 0x100, 1, 7))
            .Should().Throw<StateRestoreException>().WithMessage("*the snapshot has no section 'dev.strict'*");
    }

    [Fact]
    public void A_device_that_declares_it_is_created_fresh_when_its_section_is_missing()
    {
        var manager = Restoring();
        var device = manager.AddPio<Lenient, byte>("lenient", 0x100, 1, 7);
        manager.Complete();
        device.Value.Should().Be(7, "built by Create, as on boot");
        device.Restored.Should().BeFalse();
        manager.Save().Should().ContainSingle().Which.Should().BeEquivalentTo(new DeviceState("lenient", 1, [7]));
    }

    [Fact]
    public void A_present_section_of_such_a_device_is_still_restored_and_checked()
    {
        var restored = Restoring(new DeviceState("lenient", 1, [9]));
        restored.AddPio<Lenient, byte>("lenient", 0x100, 1, 7).Restored.Should().BeTrue();

        FluentActions.Invoking(() => Restoring(new DeviceState("lenient", 1, [9, 9])).AddPio<Lenient, byte>("lenient", 0x100, 1, 7))
            .Should().Throw<StateRestoreException>().WithMessage("*section 'dev.lenient'*");
        FluentActions.Invoking(() => Restoring(new DeviceState("lenient", 2, [9])).AddPio<Lenient, byte>("lenient", 0x100, 1, 7))
            .Should().Throw<StateRestoreException>().WithMessage("*section 'dev.lenient' has version 2*");
    }

    [Fact]
    public void A_snapshot_from_before_the_rtc_restores_with_a_fresh_rtc()
    {
        var manager = Restoring(new DeviceState("control", 1, [0, 0, 0, 0]));
        manager.AddPio<ControlPort, Action>("control", ControlPort.DefaultPort, ControlPort.RegisterWindowSize, () => { });
        var rtc = manager.AddPio<CmosRtc, TimeProvider>("rtc-cmos", CmosRtc.DefaultPort, CmosRtc.RegisterWindowSize, TimeProvider.System);
        manager.Complete();
        rtc.OffsetSeconds.Should().Be(0);
        rtc.Save().RegisterB.Should().Be(CmosRtc.RegisterBPowerOn);
        manager.Save().Select(s => s.Id).Should().Equal("control", "rtc-cmos");
    }

    [Fact]
    public void A_bad_rtc_section_is_refused()
    {
        var manager = Restoring(new DeviceState("rtc-cmos", 1, new byte[139]));
        FluentActions.Invoking(() => manager.AddPio<CmosRtc, TimeProvider>("rtc-cmos", CmosRtc.DefaultPort, CmosRtc.RegisterWindowSize, TimeProvider.System))
            .Should().Throw<StateRestoreException>().WithMessage("*section 'dev.rtc-cmos': invalid CmosRtc state: 139 bytes*");
    }

    private static bool IsFreshWhenAbsent<T, TArgs>() where T : class, IPersistent<T, TArgs> => T.CreatedFreshWhenAbsent;
}
