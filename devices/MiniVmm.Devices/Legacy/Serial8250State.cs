using System.Collections.Immutable;

namespace MiniVmm.Devices.Legacy;

/// <summary>
/// The guest-visible state of a <see cref="Serial8250"/>. Untrusted when it comes from a snapshot file:
/// <see cref="Serial8250.Restore"/> validates every field. Values that are pure functions of other fields (IIR, LSR,
/// MSR status bits) are not stored.
/// </summary>
/// <param name="InterruptEnable">IER, bits 0-3.</param>
/// <param name="FifoControl">The persistent FCR bits: 0 (FIFO off) or enable (bit 0) with DMA mode (bit 3) and the
/// trigger level (bits 6-7).</param>
/// <param name="LineControl">LCR (bit 7 is DLAB).</param>
/// <param name="ModemControl">MCR, bits 0-4 (bit 4 is loopback).</param>
/// <param name="Scratch">SCR.</param>
/// <param name="DivisorLow">DLL.</param>
/// <param name="DivisorHigh">DLM.</param>
/// <param name="ThrEmptyInterruptPending">A THR-empty interrupt is waiting to be identified through IIR.</param>
/// <param name="OverrunError">LSR.OE: a loopback byte was lost to a full RX FIFO.</param>
/// <param name="ModemStatusDelta">MSR bits 0-3 (DCTS, DDSR, TERI, DDCD).</param>
/// <param name="RxFifo">Received bytes not yet read by the guest, oldest first; at most
/// <see cref="Serial8250.RxFifoCapacity"/>.</param>
public sealed record Serial8250State(
    byte InterruptEnable,
    byte FifoControl,
    byte LineControl,
    byte ModemControl,
    byte Scratch,
    byte DivisorLow,
    byte DivisorHigh,
    bool ThrEmptyInterruptPending,
    bool OverrunError,
    byte ModemStatusDelta,
    ImmutableArray<byte> RxFifo)
{
    public bool Equals(Serial8250State? other) =>
        other is not null &&
        InterruptEnable == other.InterruptEnable &&
        FifoControl == other.FifoControl &&
        LineControl == other.LineControl &&
        ModemControl == other.ModemControl &&
        Scratch == other.Scratch &&
        DivisorLow == other.DivisorLow &&
        DivisorHigh == other.DivisorHigh &&
        ThrEmptyInterruptPending == other.ThrEmptyInterruptPending &&
        OverrunError == other.OverrunError &&
        ModemStatusDelta == other.ModemStatusDelta &&
        RxFifo.IsDefault == other.RxFifo.IsDefault &&
        (RxFifo.IsDefault || RxFifo.AsSpan().SequenceEqual(other.RxFifo.AsSpan()));

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(InterruptEnable);
        hash.Add(FifoControl);
        hash.Add(LineControl);
        hash.Add(ModemControl);
        hash.Add(Scratch);
        hash.Add(DivisorLow);
        hash.Add(DivisorHigh);
        hash.Add(ThrEmptyInterruptPending);
        hash.Add(OverrunError);
        hash.Add(ModemStatusDelta);
        if (!RxFifo.IsDefault)
            hash.AddBytes(RxFifo.AsSpan());
        return hash.ToHashCode();
    }
}
