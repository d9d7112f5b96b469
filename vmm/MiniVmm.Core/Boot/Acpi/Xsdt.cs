using System.Buffers.Binary;

namespace MiniVmm.Core.Boot.Acpi;

/// <summary>The Extended System Description Table (ACPI 6.x §5.2.8): the header, then the 64-bit address of every
/// other top-level table (here the FADT and the MADT; the DSDT is reached through the FADT).</summary>
public static class Xsdt
{
    public const byte Revision = 1;

    public static byte[] Build(IReadOnlyList<ulong> tableAddresses)
    {
        byte[] t = AcpiTable.Create("XSDT", AcpiTable.HeaderSize + 8 * tableAddresses.Count, Revision, "MVMMXSDT");
        for (int i = 0; i < tableAddresses.Count; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(AcpiTable.HeaderSize + 8 * i), tableAddresses[i]);
        return AcpiTable.Seal(t);
    }
}
