using System.Collections.Immutable;
using MiniVmm.Core.State;
using MiniVmm.Devices.Legacy;

namespace MiniVmm.Devices.Tests.Legacy;

/// <summary>
/// Each device's own byte encoding (version 1) and the <see cref="IPersistent{TSelf,TArgs}"/> contract on top of it:
/// SaveState → RestoreState gives back the same device, and malformed bytes are a <see cref="DeviceStateException"/>.
/// </summary>
public sealed class StateEncodingTests
{
    private static T RoundTrip<T, TArgs>(T device, TArgs args) where T : class, IPersistent<T, TArgs> =>
        T.RestoreState(args, T.StateVersion, device.SaveState());

    [Fact]
    public void Every_device_writes_version_1()
    {
        Serial8250.StateVersion.Should().Be(1);
        DebugExitPort.StateVersion.Should().Be(1);
        ControlPort.StateVersion.Should().Be(1);
        I8042.StateVersion.Should().Be(1);
        CmosRtc.StateVersion.Should().Be(1);
    }

    [Fact]
    public void Serial_state_survives_the_byte_encoding()
    {
        var state = new Serial8250State(0x0F, 0xC9, 0x1B, 0x1F, 0x77, 0x03, 0x01, true, true, 0x0F,
            ImmutableArray.Create("hello"u8.ToArray()));
        byte[] bytes = state.Encode();
        bytes.Should().HaveCount(11 + 5);
        Serial8250State.Decode(bytes).Should().Be(state);
        Serial8250State.Decode(new Serial8250State(0, 0, 3, 0, 0, 12, 0, false, false, 0, ImmutableArray<byte>.Empty).Encode())
            .RxFifo.Should().BeEmpty();
    }

    [Fact]
    public void Serial_restored_through_the_contract_is_the_same_device()
    {
        var serial = Serial8250.Create(new Serial8250.Wiring(new RecordingSink(), new RecordingInterruptLine()));
        serial.Write(7, [0x55]);
        serial.Write(1, [0x02]);
        serial.EnqueueInput("ab"u8);
        var irq = new RecordingInterruptLine();
        var restored = RoundTrip(serial, new Serial8250.Wiring(new RecordingSink(), irq));
        restored.Save().Should().Be(serial.Save());
        irq.Level.Should().BeTrue("received data and THR empty are pending");
    }

    public static TheoryData<string, byte[], string> BadSerialBytes => new()
    {
        { "empty", [], "0 bytes; at least 11 expected" },
        { "RX count beyond the data", [0, 0, 3, 0, 0, 12, 0, 0, 0, 0, 2, 0x41], "12 bytes, but its RX count 2 means 13" },
        { "data beyond the RX count", [0, 0, 3, 0, 0, 12, 0, 0, 0, 0, 0, 0x41], "12 bytes, but its RX count 0 means 11" },
        { "boolean 2", [0, 0, 3, 0, 0, 12, 0, 2, 0, 0, 0], "neither 0 nor 1" },
        { "FIFO over capacity", [0, 0, 3, 0, 0, 12, 0, 0, 0, 0, 65, .. new byte[65]], "RX FIFO holds 65 bytes" },
        { "reserved IER bits", [0x10, 0, 3, 0, 0, 12, 0, 0, 0, 0, 0], "IER 0x10" },
    };

    [Theory]
    [MemberData(nameof(BadSerialBytes))]
    public void Malformed_serial_bytes_are_refused(string name, byte[] bytes, string message)
    {
        FluentActions.Invoking(() => Serial8250.RestoreState(new(new RecordingSink(), new RecordingInterruptLine()), 1, bytes))
            .Should().Throw<DeviceStateException>(name).WithMessage($"invalid Serial8250 state: *{message}*");
    }

    [Fact]
    public void Debug_exit_state_survives_the_byte_encoding_and_refuses_malformed_bytes()
    {
        var port = DebugExitPort.Create(_ => { });
        RoundTrip(port, (Action<uint>)(_ => { })).LastValue.Should().BeNull();
        port.Write(0, [0x34, 0x12]);
        RoundTrip(port, (Action<uint>)(_ => { })).LastValue.Should().Be(0x1234u);
        new DebugExitPortState(uint.MaxValue).Encode().Should().Equal(1, 0xff, 0xff, 0xff, 0xff);

        Action<uint> none = _ => { };
        FluentActions.Invoking(() => DebugExitPort.RestoreState(none, 1, [1, 0, 0, 0])).Should().Throw<DeviceStateException>().WithMessage("*4 bytes; 5 expected*");
        FluentActions.Invoking(() => DebugExitPort.RestoreState(none, 1, [2, 0, 0, 0, 0])).Should().Throw<DeviceStateException>().WithMessage("*flag 2*");
        FluentActions.Invoking(() => DebugExitPort.RestoreState(none, 1, [0, 7, 0, 0, 0])).Should().Throw<DeviceStateException>().WithMessage("*without its flag*");
    }

    [Fact]
    public void Control_port_state_survives_the_byte_encoding_and_refuses_malformed_bytes()
    {
        var port = ControlPort.Create(() => { });
        port.SetStatus(0xdeadbeef);
        RoundTrip(port, (Action)(() => { })).Status.Should().Be(0xdeadbeef);
        FluentActions.Invoking(() => ControlPort.RestoreState(() => { }, 1, [1, 2, 3])).Should().Throw<DeviceStateException>().WithMessage("*3 bytes; 4 expected*");
    }

    [Fact]
    public void I8042_state_is_empty_and_any_byte_is_refused()
    {
        int resets = 0;
        var i8042 = I8042.Create(() => resets++);
        i8042.SaveState().Should().BeEmpty();
        var restored = RoundTrip(i8042, (Action)(() => resets++));
        restored.Write(4, [I8042.CommandPulseReset]);
        resets.Should().Be(1, "the restored controller calls the restore's callback");
        FluentActions.Invoking(() => I8042.RestoreState(() => { }, 1, [0])).Should().Throw<DeviceStateException>().WithMessage("*1 bytes*");
    }
}
