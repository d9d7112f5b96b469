using System.Collections.Immutable;
using MiniVmm.Core.Bus;
using MiniVmm.Core.State;

namespace MiniVmm.Devices.Legacy;

/// <summary>Snapshot support: <see cref="Save"/> and a <see cref="Restore"/> that validates like guest input, and the
/// byte-level <see cref="IPersistent{TSelf,TArgs}"/> contract the device manager uses on top of them.</summary>
public sealed partial class Serial8250 : IPersistent<Serial8250, Serial8250.Wiring>
{
    /// <summary>What a UART is connected to: the constructor arguments for boot and restore alike.</summary>
    /// <param name="Sink">Receives every byte the guest transmits.</param>
    /// <param name="Interrupt">The COM IRQ line.</param>
    /// <param name="RxDrained">Optional: called when a guest read empties the RX FIFO.</param>
    public sealed record Wiring(IByteSink Sink, IInterruptLine Interrupt, Action? RxDrained = null);

    public static ushort StateVersion => 1;

    public static Serial8250 Create(Wiring args) => new(args.Sink, args.Interrupt, args.RxDrained);

    public byte[] SaveState() => Save().Encode();

    public static Serial8250 RestoreState(Wiring args, ushort version, ReadOnlySpan<byte> state) =>
        Restore(Serial8250State.Decode(state), args.Sink, args.Interrupt, args.RxDrained);

    /// <summary>Captures the guest-visible state. Call while the vCPUs are paused for a consistent snapshot.</summary>
    public Serial8250State Save()
    {
        lock (_lock)
        {
            var fifo = new byte[_rxCount];
            for (int i = 0; i < _rxCount; i++)
                fifo[i] = _rx[(_rxHead + i) % RxFifoCapacity];
            return new Serial8250State(_ier, _fcr, _lcr, _mcr, _scr, _dll, _dlm, _thrEmptyPending, _overrun,
                _msrDelta, ImmutableArray.Create(fifo));
        }
    }

    /// <summary>Rebuilds a device from <paramref name="state"/> (validated as strictly as guest input) and drives the
    /// interrupt line to the level that state implies.</summary>
    /// <exception cref="DeviceStateException">The state is impossible for this device.</exception>
    public static Serial8250 Restore(Serial8250State state, IByteSink sink, IInterruptLine interrupt,
        Action? rxDrained = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        Validate(state);
        var serial = new Serial8250(sink, interrupt, rxDrained)
        {
            _ier = state.InterruptEnable,
            _fcr = state.FifoControl,
            _lcr = state.LineControl,
            _mcr = state.ModemControl,
            _scr = state.Scratch,
            _dll = state.DivisorLow,
            _dlm = state.DivisorHigh,
            _thrEmptyPending = state.ThrEmptyInterruptPending,
            _overrun = state.OverrunError,
            _msrDelta = state.ModemStatusDelta,
        };
        state.RxFifo.CopyTo(serial._rx);
        serial._rxCount = state.RxFifo.Length;
        lock (serial._lock)
        {
            serial._lineAsserted = serial.ComputeIir() != IirNone;
            serial._interrupt.SetLevel(serial._lineAsserted);
        }
        return serial;
    }

    private static void Validate(Serial8250State state)
    {
        const string Device = nameof(Serial8250);
        if ((state.InterruptEnable & ~IerMask) != 0)
            throw new DeviceStateException(Device, $"IER 0x{state.InterruptEnable:x2} has reserved bits set");
        if ((state.ModemControl & ~McrMask) != 0)
            throw new DeviceStateException(Device, $"MCR 0x{state.ModemControl:x2} has reserved bits set");
        if ((state.FifoControl & ~FcrPersistentMask) != 0 ||
            ((state.FifoControl & FcrEnable) == 0 && state.FifoControl != 0))
            throw new DeviceStateException(Device, $"FCR 0x{state.FifoControl:x2} is not a valid FIFO setting");
        if ((state.ModemStatusDelta & ~MsrDeltaMask) != 0)
            throw new DeviceStateException(Device, $"MSR delta 0x{state.ModemStatusDelta:x2} has status bits set");
        if (state.RxFifo.IsDefault)
            throw new DeviceStateException(Device, "RX FIFO is missing");
        if (state.RxFifo.Length > RxFifoCapacity)
            throw new DeviceStateException(Device,
                $"RX FIFO holds {state.RxFifo.Length} bytes; the capacity is {RxFifoCapacity}");
    }
}
