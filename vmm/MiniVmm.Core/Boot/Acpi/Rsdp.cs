using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Core.Boot.Acpi;

/// <summary>
/// The Root System Description Pointer, ACPI 2.0+ form (ACPI 6.x §5.2.5.3): "RSD PTR ", a checksum over its first 20
/// bytes (the ACPI 1.0 part), revision 2, the length 36, the XSDT's address and an extended checksum over all 36 bytes.
/// The 32-bit RSDT address stays 0: every kernel that reads revision 2 uses the XSDT.
/// </summary>
/// <remarks>Linux finds it through <c>boot_params.acpi_rsdp_addr</c> when the loader sets it, otherwise by scanning
/// 0xe0000-0xfffff on 16-byte boundaries for the signature with a valid checksum; the address must be 16-aligned.</remarks>
public static class Rsdp
{
    public const int Size = 36;
    public const int V1Size = 20;
    public const string Signature = "RSD PTR ";

    public static byte[] Build(ulong xsdtAddress)
    {
        byte[] r = new byte[Size];
        Span<byte> s = r;
        Encoding.ASCII.GetBytes(Signature, s[..8]);
        Encoding.ASCII.GetBytes(AcpiTable.OemId, s[9..15]);
        s[15] = 2;                                                    // revision: ACPI 2.0+, XSDT present
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], Size);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], xsdtAddress);
        s[8] = AcpiTable.Checksum(s[..V1Size]);
        s[32] = AcpiTable.Checksum(s);
        return r;
    }
}
