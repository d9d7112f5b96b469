using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Core.Boot.Acpi;

/// <summary>
/// The few ACPI Machine Language encodings the DSDT needs (ACPI 6.x §20.2): scopes, devices, named integers and
/// strings, and resource-template buffers. Each method returns the encoded bytes of one term.
/// </summary>
public static class Aml
{
    private const byte NameOp = 0x08;
    private const byte BytePrefix = 0x0a;
    private const byte WordPrefix = 0x0b;
    private const byte DWordPrefix = 0x0c;
    private const byte StringPrefix = 0x0d;
    private const byte ScopeOp = 0x10;
    private const byte BufferOp = 0x11;
    private const byte ExtOpPrefix = 0x5b;
    private const byte DeviceOp = 0x82;
    private const byte RootChar = 0x5c;

    /// <summary><c>Scope(\NAME) { terms }</c> for a name in the root (e.g. <c>_SB_</c>).</summary>
    public static byte[] RootScope(string nameSeg, params byte[][] terms) =>
        [ScopeOp, .. PackageLength([RootChar, .. NameSeg(nameSeg), .. terms.SelectMany(t => t)])];

    /// <summary><c>Device(NAME) { terms }</c>.</summary>
    public static byte[] Device(string nameSeg, params byte[][] terms) =>
        [ExtOpPrefix, DeviceOp, .. PackageLength([.. NameSeg(nameSeg), .. terms.SelectMany(t => t)])];

    /// <summary><c>Name(NAME, value)</c>, the value already encoded.</summary>
    public static byte[] Name(string nameSeg, byte[] value) => [NameOp, .. NameSeg(nameSeg), .. value];

    /// <summary>A string constant.</summary>
    public static byte[] String(string value)
    {
        if (value.Any(c => c is < (char)1 or > (char)0x7f))
            throw new ArgumentException("an AML string holds ASCII characters 1..0x7f", nameof(value));
        return [StringPrefix, .. Encoding.ASCII.GetBytes(value), 0];
    }

    /// <summary>An integer constant in its shortest form (ZeroOp, OneOp, or a byte/word/dword/qword prefix).</summary>
    public static byte[] Integer(ulong value)
    {
        if (value == 0) return [0x00];
        if (value == 1) return [0x01];
        if (value <= byte.MaxValue) return [BytePrefix, (byte)value];
        if (value <= ushort.MaxValue) return [WordPrefix, (byte)value, (byte)(value >> 8)];
        byte[] b;
        if (value <= uint.MaxValue)
        {
            b = new byte[5];
            b[0] = DWordPrefix;
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(1), (uint)value);
            return b;
        }
        b = new byte[9];
        b[0] = 0x0e;
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(1), value);
        return b;
    }

    /// <summary><c>ResourceTemplate() { descriptors }</c>: a buffer of resource descriptors closed by an end tag.</summary>
    public static byte[] ResourceTemplate(params byte[][] descriptors)
    {
        byte[] data = [.. descriptors.SelectMany(d => d), 0x79, 0x00]; // end tag; checksum 0 = "treat as valid"
        return [BufferOp, .. PackageLength([.. Integer((ulong)data.Length), .. data])];
    }

    /// <summary><c>Memory32Fixed(ReadWrite, base, length)</c> (§6.4.3.4).</summary>
    public static byte[] Memory32Fixed(uint address, uint length)
    {
        byte[] d = new byte[12];
        d[0] = 0x86;
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(1), 9);
        d[3] = 1;                                                     // read/write
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(4), address);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), length);
        return d;
    }

    /// <summary><c>Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }</c>, the extended interrupt
    /// descriptor (§6.4.3.6).</summary>
    public static byte[] EdgeInterrupt(uint gsi)
    {
        byte[] d = new byte[9];
        d[0] = 0x89;
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(1), 6);
        d[3] = 0b0011;                                                // consumer, edge-triggered, active high, exclusive
        d[4] = 1;                                                     // one interrupt
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(5), gsi);
        return d;
    }

    /// <summary>A four-character name segment: upper-case letters, digits and '_', the first not a digit.</summary>
    public static byte[] NameSeg(string name)
    {
        if (name.Length != 4 || char.IsAsciiDigit(name[0]) || !name.All(c => c is '_' or >= 'A' and <= 'Z' or >= '0' and <= '9'))
            throw new ArgumentException($"'{name}' is not an AML name segment", nameof(name));
        return Encoding.ASCII.GetBytes(name);
    }

    /// <summary><paramref name="body"/> preceded by its PkgLength, which counts its own bytes too (§20.2.4): one byte
    /// for totals below 64, otherwise a lead byte with the count of following bytes and the low nibble.</summary>
    public static byte[] PackageLength(byte[] body)
    {
        for (int extra = 0; extra <= 3; extra++)
        {
            int total = body.Length + 1 + extra;
            if (extra == 0 && total < 0x40)
                return [(byte)total, .. body];
            if (extra > 0 && total < 1 << (4 + 8 * extra))
            {
                byte[] lead = new byte[1 + extra];
                lead[0] = (byte)((extra << 6) | (total & 0xf));
                for (int i = 1; i <= extra; i++)
                    lead[i] = (byte)(total >> (4 + 8 * (i - 1)));
                return [.. lead, .. body];
            }
        }
        throw new ArgumentOutOfRangeException(nameof(body), "an AML package holds at most 2^28 bytes");
    }
}
