namespace MiniVmm.Core.Boot.Acpi;

/// <summary>Where each table of an <see cref="AcpiTables"/> blob lies (guest physical) and the blob itself, to be
/// written at <see cref="AcpiTables.Address"/>.</summary>
public sealed record AcpiTableSet(byte[] Bytes, ulong Rsdp, ulong Xsdt, ulong Fadt, ulong Madt, ulong Dsdt);

/// <summary>
/// Builds the ACPI tables of a Linux boot as one blob for the BIOS area: RSDP at 0xe0000 (the first 16-byte slot of the
/// range Linux scans), then XSDT, FADT, MADT and DSDT, each 16-aligned. The area lies in the legacy hole that the e820
/// map reserves (0x9fc00-0xfffff), so the kernel neither allocates it nor needs it reclaimed; it also names the RSDP
/// in <c>boot_params.acpi_rsdp_addr</c>.
/// </summary>
public static class AcpiTables
{
    public const ulong Address = 0xe0000;
    /// <summary>End (exclusive) of the area: the top of the BIOS area below 1 MiB.</summary>
    public const ulong AreaEnd = 0x100000;
    private const int Alignment = 16;

    public static AcpiTableSet Build(int vcpus, IReadOnlyList<VirtioMmioWindow> virtio)
    {
        ArgumentNullException.ThrowIfNull(virtio);
        // The order of the blob: RSDP, XSDT, FADT, MADT, DSDT. The XSDT's and FADT's contents depend on the addresses of
        // the tables after them, whose sizes do not depend on anything written before, so lay out first.
        byte[] madt = Madt.Build(vcpus);
        byte[] dsdt = Dsdt.Build(virtio);
        ulong rsdpAt = Address;
        ulong xsdtAt = Align(rsdpAt + Rsdp.Size);
        int xsdtSize = AcpiTable.HeaderSize + 2 * 8;
        ulong fadtAt = Align(xsdtAt + (ulong)xsdtSize);
        ulong madtAt = Align(fadtAt + Fadt.Length);
        ulong dsdtAt = Align(madtAt + (ulong)madt.Length);
        ulong end = dsdtAt + (ulong)dsdt.Length;
        if (end > AreaEnd)
            throw new InvalidOperationException($"the ACPI tables need 0x{end - Address:x} bytes from 0x{Address:x}, more than the BIOS area holds");

        byte[] blob = new byte[end - Address];
        Place(blob, rsdpAt, Rsdp.Build(xsdtAt));
        Place(blob, xsdtAt, Xsdt.Build([fadtAt, madtAt]));
        Place(blob, fadtAt, Fadt.Build(dsdtAt));
        Place(blob, madtAt, madt);
        Place(blob, dsdtAt, dsdt);
        return new AcpiTableSet(blob, rsdpAt, xsdtAt, fadtAt, madtAt, dsdtAt);
    }

    private static ulong Align(ulong a) => (a + Alignment - 1) & ~(ulong)(Alignment - 1);

    private static void Place(byte[] blob, ulong at, byte[] table) => table.CopyTo(blob, (int)(at - Address));
}
