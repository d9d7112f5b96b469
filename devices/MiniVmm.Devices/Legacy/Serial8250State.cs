using System.Collections.Immutable;

namespace MiniVmm.Devices.Legacy;

/// <summary>
/// The guest-visible state of a <see cref="Serial8250"/>. Untrusted when it comes from a snapshot file:
/// <see cref="Serial8250.Restore"/> validates every field. Values that are pure functions of other fields (IIR, LSR,
/// MSR status bits) are not stored.
/// </summary>
/// <remarks>Encoding, version 1 (<see cref="Encode"/>): <c>IER, FCR, LCR, MCR, SCR, DLL, DLM, THRE pending (0/1),
/// overrun (0/1), MSR delta, RX count n, n RX bytes</c>: 11 + n bytes.</remarks>
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

    private const int FixedBytes = 11;

    /// <summary>The version-1 encoding (see the remarks).</summary>
    public byte[] Encode()
    {
        var fifo = RxFifo.IsDefault ? [] : RxFifo.AsSpan();
        if (fifo.Length > byte.MaxValue) throw new InvalidOperationException($"RX FIFO of {fifo.Length} bytes cannot be encoded");
        var data = new byte[FixedBytes + fifo.Length];
        data[0] = InterruptEnable; data[1] = FifoControl; data[2] = LineControl; data[3] = ModemControl;
        data[4] = Scratch; data[5] = DivisorLow; data[6] = DivisorHigh;
        data[7] = (byte)(ThrEmptyInterruptPending ? 1 : 0); data[8] = (byte)(OverrunError ? 1 : 0);
        data[9] = ModemStatusDelta; data[10] = (byte)fifo.Length;
        fifo.CopyTo(data.AsSpan(FixedBytes));
        return data;
    }

    /// <summary>Decodes the version-1 encoding. Checks lengths and booleans only; <see cref="Serial8250.Restore"/>
    /// validates the register values.</summary>
    /// <exception cref="DeviceStateException">Wrong length or a boolean that is neither 0 nor 1.</exception>
    public static Serial8250State Decode(ReadOnlySpan<byte> d)
    {
        const string Device = nameof(Serial8250);
        if (d.Length < FixedBytes)
            throw new DeviceStateException(Device, $"{d.Length} bytes; at least {FixedBytes} expected");
        if (d.Length != FixedBytes + d[10])
            throw new DeviceStateException(Device, $"{d.Length} bytes, but its RX count {d[10]} means {FixedBytes + d[10]}");
        if (d[7] > 1 || d[8] > 1)
            throw new DeviceStateException(Device, "a boolean field is neither 0 nor 1");
        return new Serial8250State(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] == 1, d[8] == 1, d[9],
            ImmutableArray.Create(d[FixedBytes..].ToArray()));
    }
}
