using System.Buffers.Binary;
using System.Text;
using FluentAssertions;

namespace MiniVmm.Core.Tests.Boot.Acpi;

/// <summary>Reads ACPI tables back the way an OS does: the RSDP by scanning the BIOS area, then each table by its
/// address, with signature, length and checksum checked.</summary>
internal sealed class AcpiReader(Func<ulong, int, byte[]> read)
{
    public static byte Sum(ReadOnlySpan<byte> bytes)
    {
        byte s = 0;
        foreach (byte b in bytes) s += b;
        return s;
    }

    /// <summary>Linux's <c>acpi_tb_scan_memory_for_rsdp</c>: 0xe0000-0xfffff on 16-byte boundaries, the signature and
    /// the ACPI 1.0 checksum (and, for revision 2+, the extended one).</summary>
    public ulong? ScanForRsdp()
    {
        byte[] area = read(0xe0000, 0x20000);
        for (int at = 0; at + 36 <= area.Length; at += 16)
        {
            ReadOnlySpan<byte> s = area.AsSpan(at);
            if (Encoding.ASCII.GetString(s[..8]) != "RSD PTR " || Sum(s[..20]) != 0) continue;
            if (s[15] >= 2 && Sum(s[..(int)BinaryPrimitives.ReadUInt32LittleEndian(s[20..])]) != 0) continue;
            return 0xe0000 + (ulong)at;
        }
        return null;
    }

    /// <summary>The table at <paramref name="address"/>, its signature, length and checksum checked.</summary>
    public byte[] Table(ulong address, string signature)
    {
        byte[] header = read(address, 36);
        Encoding.ASCII.GetString(header, 0, 4).Should().Be(signature);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
        length.Should().BeGreaterThanOrEqualTo(36, $"{signature}'s length covers its header");
        byte[] table = read(address, length);
        Sum(table).Should().Be(0, $"{signature}'s checksum");
        return table;
    }

    /// <summary>The XSDT's entries, by the signature of the table each points at.</summary>
    public Dictionary<string, ulong> XsdtEntries(ulong xsdt)
    {
        byte[] t = Table(xsdt, "XSDT");
        var entries = new Dictionary<string, ulong>();
        for (int at = 36; at < t.Length; at += 8)
        {
            ulong a = BinaryPrimitives.ReadUInt64LittleEndian(t.AsSpan(at));
            entries.Add(Encoding.ASCII.GetString(read(a, 4)), a);
        }
        return entries;
    }
}
