using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Core.Boot.Acpi;

/// <summary>
/// The 36-byte system description table header every ACPI table but the RSDP starts with (ACPI 6.x §5.2.6), and the
/// byte checksum ACPI uses everywhere: all bytes of a table, checksum included, sum to zero.
/// </summary>
public static class AcpiTable
{
    public const int HeaderSize = 36;
    public const int ChecksumOffset = 9;
    public const string OemId = "MINVMM";      // 6 bytes
    public const string CreatorId = "MVMM";    // 4 bytes

    /// <summary>A zeroed table of <paramref name="length"/> bytes with its header filled in but for the checksum
    /// (<see cref="Seal"/> sets it once the body is written).</summary>
    public static byte[] Create(string signature, int length, byte revision, string oemTableId)
    {
        if (signature.Length != 4 || oemTableId.Length > 8)
            throw new ArgumentException("an ACPI signature has 4 characters and an OEM table id at most 8");
        byte[] t = new byte[length];
        Span<byte> h = t;
        Encoding.ASCII.GetBytes(signature, h[..4]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)length);
        h[8] = revision;
        Encoding.ASCII.GetBytes(OemId, h[10..16]);
        Encoding.ASCII.GetBytes(oemTableId.PadRight(8), h[16..24]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[24..], 1);   // OEM revision
        Encoding.ASCII.GetBytes(CreatorId, h[28..32]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[32..], 1);   // creator revision
        return t;
    }

    /// <summary>Sets the header's checksum so that the whole table sums to zero.</summary>
    public static byte[] Seal(byte[] table)
    {
        table[ChecksumOffset] = 0;
        table[ChecksumOffset] = Checksum(table);
        return table;
    }

    /// <summary>The byte that makes <paramref name="bytes"/> sum to zero (with that byte still 0 in them).</summary>
    public static byte Checksum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte b in bytes)
            sum += b;
        return (byte)(0 - sum);
    }
}
