using System.Buffers.Binary;
using System.Collections.Immutable;

namespace MiniVmm.Devices.Legacy;

/// <summary>
/// The guest-visible state of a <see cref="CmosRtc"/>. Untrusted when it comes from a snapshot file:
/// <see cref="Decode"/> checks every field. The running time is not stored, only its distance from the host clock: a
/// restored RTC keeps running from host now + <see cref="OffsetSeconds"/>, as QEMU's default <c>clock=host</c> does.
/// </summary>
/// <remarks>
/// <para>Encoding, version 1 (<see cref="Encode"/>), 140 bytes: <c>u8 index (0-127), u8 NMI masked (0/1), u8 register
/// A (bit 7, UIP, clear), u8 register B, 128 RAM bytes, i64 offset in seconds</c> (little endian).</para>
/// <para>The RAM slots of registers A-D (0x0A-0x0D) are always 0 (those registers live in their own fields or are
/// computed). The slots of the time registers (0x00, 0x02, 0x04, 0x06-0x09, 0x32) hold the frozen time while register
/// B's SET bit is on (any bytes: the guest may have changed the data mode since, and the time is checked when SET is
/// cleared) and are 0 otherwise.</para>
/// </remarks>
/// <param name="Index">The register the data port selects (port 0x70, low 7 bits).</param>
/// <param name="NmiMasked">Bit 7 of the last index write (the NMI mask; kept, not acted on).</param>
/// <param name="RegisterA">Divider and rate-select bits as written (UIP is never set).</param>
/// <param name="RegisterB">SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE as written.</param>
/// <param name="Ram">The 128 CMOS bytes (see the remarks for the slots with a fixed meaning).</param>
/// <param name="OffsetSeconds">Guest time minus host UTC time, in whole seconds.</param>
public sealed record CmosRtcState(
    byte Index,
    bool NmiMasked,
    byte RegisterA,
    byte RegisterB,
    ImmutableArray<byte> Ram,
    long OffsetSeconds)
{
    /// <summary>Bytes of the version-1 encoding.</summary>
    public const int EncodedLength = 4 + CmosRtc.RamSize + 8;

    public bool Equals(CmosRtcState? other) =>
        other is not null &&
        Index == other.Index &&
        NmiMasked == other.NmiMasked &&
        RegisterA == other.RegisterA &&
        RegisterB == other.RegisterB &&
        OffsetSeconds == other.OffsetSeconds &&
        Ram.IsDefault == other.Ram.IsDefault &&
        (Ram.IsDefault || Ram.AsSpan().SequenceEqual(other.Ram.AsSpan()));

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Index);
        hash.Add(NmiMasked);
        hash.Add(RegisterA);
        hash.Add(RegisterB);
        hash.Add(OffsetSeconds);
        if (!Ram.IsDefault)
            hash.AddBytes(Ram.AsSpan());
        return hash.ToHashCode();
    }

    /// <summary>The version-1 encoding (see the remarks).</summary>
    public byte[] Encode()
    {
        if (Ram.IsDefault || Ram.Length != CmosRtc.RamSize)
            throw new InvalidOperationException($"CMOS RAM of {(Ram.IsDefault ? 0 : Ram.Length)} bytes cannot be encoded");
        var data = new byte[EncodedLength];
        data[0] = Index;
        data[1] = (byte)(NmiMasked ? 1 : 0);
        data[2] = RegisterA;
        data[3] = RegisterB;
        Ram.AsSpan().CopyTo(data.AsSpan(4));
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(4 + CmosRtc.RamSize), OffsetSeconds);
        return data;
    }

    /// <summary>Decodes the version-1 encoding. Checks the length and the boolean only; <see cref="CmosRtc.Restore"/>
    /// validates the values.</summary>
    /// <exception cref="DeviceStateException">Wrong length or an NMI-mask field that is neither 0 nor 1.</exception>
    public static CmosRtcState Decode(ReadOnlySpan<byte> d)
    {
        const string Device = nameof(CmosRtc);
        if (d.Length != EncodedLength)
            throw new DeviceStateException(Device, $"{d.Length} bytes; {EncodedLength} expected");
        if (d[1] > 1)
            throw new DeviceStateException(Device, "the NMI-mask field is neither 0 nor 1");
        return new CmosRtcState(d[0], d[1] == 1, d[2], d[3], ImmutableArray.Create(d.Slice(4, CmosRtc.RamSize).ToArray()),
            BinaryPrimitives.ReadInt64LittleEndian(d[(4 + CmosRtc.RamSize)..]));
    }
}
