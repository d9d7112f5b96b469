namespace MiniVmm.Core.Memory;

/// <summary>
/// Where guest RAM of a given size lies in the guest-physical space, as on a PC (and as QEMU and Firecracker lay it
/// out): up to <see cref="LowRamLimit"/> from address 0, the rest from 4 GiB, so the 32-bit MMIO hole (virtio windows,
/// IOAPIC, LAPIC) between them holds no RAM. Boot, snapshots and restore all take the ranges from here.
/// </summary>
public static class GuestMemoryLayout
{
    /// <summary>The start of the 32-bit MMIO hole: RAM below it, devices from here to 4 GiB.</summary>
    public const ulong LowRamLimit = 3UL << 30;
    /// <summary>Where RAM beyond <see cref="LowRamLimit"/> continues.</summary>
    public const ulong HighRamBase = 4UL << 30;

    /// <summary>The RAM ranges, in address order, for <paramref name="size"/> bytes of RAM.</summary>
    public static IReadOnlyList<(ulong GuestAddress, ulong Size)> RamRanges(ulong size)
    {
        if (size <= LowRamLimit) return [(0, size)];
        return [(0, LowRamLimit), (HighRamBase, size - LowRamLimit)];
    }

    /// <summary>True when <paramref name="regions"/> are exactly the ranges of <paramref name="size"/> bytes of RAM.</summary>
    public static bool Matches(IEnumerable<(ulong GuestAddress, ulong Size)> regions, ulong size) =>
        regions.SequenceEqual(RamRanges(size));
}
