namespace MiniVmm.Core.Boot.Acpi;

/// <summary>
/// The Differentiated System Description Table: a definition block whose <c>\_SB_</c> scope holds one device per
/// virtio-mmio window, <c>Device(VRnn) { _HID "LNRO0005", _UID n, _CRS { Memory32Fixed(window), Interrupt(edge,
/// active high) { gsi } } }</c>. "LNRO0005" is the id Linux's <c>virtio_mmio</c> driver matches in ACPI (the same
/// description Firecracker gives its guests), so a kernel without <c>CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES</c> still finds
/// the devices. With no devices the block is empty, which is valid.
/// </summary>
public static class Dsdt
{
    /// <summary>Revision 2: integers are 64-bit.</summary>
    public const byte Revision = 2;
    public const string VirtioMmioHid = "LNRO0005";

    public static byte[] Build(IReadOnlyList<VirtioMmioWindow> virtio)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(virtio.Count, 256);
        byte[] body = virtio.Count == 0 ? [] : Aml.RootScope("_SB_", virtio.Select(Device).ToArray());
        byte[] t = AcpiTable.Create("DSDT", AcpiTable.HeaderSize + body.Length, Revision, "MVMMDSDT");
        body.CopyTo(t, AcpiTable.HeaderSize);
        return AcpiTable.Seal(t);
    }

    private static byte[] Device(VirtioMmioWindow w, int index)
    {
        if (w.Address > uint.MaxValue - w.Size)
            throw new ArgumentOutOfRangeException(nameof(w), $"virtio-mmio window 0x{w.Address:x} must lie below 4 GiB");
        return Aml.Device($"VR{index:X2}",
            Aml.Name("_HID", Aml.String(VirtioMmioHid)),
            Aml.Name("_UID", Aml.Integer((ulong)index)),
            Aml.Name("_CRS", Aml.ResourceTemplate(Aml.Memory32Fixed((uint)w.Address, w.Size), Aml.EdgeInterrupt(w.Gsi))));
    }
}
