using MiniVmm.Core.Memory;

namespace MiniVmm.Devices.Virtio.Queue;

/// <summary>
/// What the driver programmed for one split virtqueue (virtio 1.2 §2.7): size and the guest addresses of the
/// descriptor table, the driver area (available ring) and the device area (used ring).
/// </summary>
public readonly record struct QueueLayout(ushort Size, GuestAddress DescriptorTable, GuestAddress AvailableRing, GuestAddress UsedRing)
{
    public ulong DescriptorTableBytes => (ulong)Size * VirtqDescriptor.Size;
    /// <summary>flags, idx, ring[Size], used_event.</summary>
    public ulong AvailableRingBytes => 6 + 2UL * Size;
    /// <summary>flags, idx, ring[Size] of 8-byte elements, avail_event.</summary>
    public ulong UsedRingBytes => 6 + (ulong)VirtqUsedElement.Size * Size;

    /// <summary>Null when the layout is usable with <paramref name="memory"/> and <paramref name="maxSize"/>, else why not.</summary>
    public string? Check(GuestMemory memory, ushort maxSize)
    {
        if (Size == 0 || (Size & (Size - 1)) != 0) return $"queue size {Size} is not a power of two";
        if (Size > maxSize) return $"queue size {Size} is above the maximum {maxSize}";
        if (!DescriptorTable.IsAligned(16)) return $"descriptor table {DescriptorTable} is not 16-byte aligned";
        if (!AvailableRing.IsAligned(2)) return $"available ring {AvailableRing} is not 2-byte aligned";
        if (!UsedRing.IsAligned(4)) return $"used ring {UsedRing} is not 4-byte aligned";
        if (!memory.Contains(DescriptorTable, DescriptorTableBytes)) return $"descriptor table {DescriptorTable}+0x{DescriptorTableBytes:x} is outside guest RAM";
        if (!memory.Contains(AvailableRing, AvailableRingBytes)) return $"available ring {AvailableRing}+0x{AvailableRingBytes:x} is outside guest RAM";
        if (!memory.Contains(UsedRing, UsedRingBytes)) return $"used ring {UsedRing}+0x{UsedRingBytes:x} is outside guest RAM";
        return null;
    }
}
