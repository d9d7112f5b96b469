namespace MiniVmm.Devices.Virtio.Queue;

/// <summary>
/// What the driver programmed for one split virtqueue (virtio 1.2 §2.7): size and the guest addresses of the
/// descriptor table, the driver area (available ring) and the device area (used ring).
/// </summary>
public readonly record struct QueueLayout(ushort Size, ulong DescriptorTable, ulong AvailableRing, ulong UsedRing)
{
    public ulong DescriptorTableBytes => (ulong)Size * VirtqDescriptor.Size;
    /// <summary>flags, idx, ring[Size], used_event.</summary>
    public ulong AvailableRingBytes => 6 + 2UL * Size;
    /// <summary>flags, idx, ring[Size] of 8-byte elements, avail_event.</summary>
    public ulong UsedRingBytes => 6 + (ulong)VirtqUsedElement.Size * Size;

    /// <summary>Null when the layout is usable with <paramref name="memory"/> and <paramref name="maxSize"/>, else why not.</summary>
    public string? Check(MiniVmm.Core.Memory.GuestMemory memory, ushort maxSize)
    {
        if (Size == 0 || (Size & (Size - 1)) != 0) return $"queue size {Size} is not a power of two";
        if (Size > maxSize) return $"queue size {Size} is above the maximum {maxSize}";
        if (DescriptorTable % 16 != 0) return $"descriptor table 0x{DescriptorTable:x} is not 16-byte aligned";
        if (AvailableRing % 2 != 0) return $"available ring 0x{AvailableRing:x} is not 2-byte aligned";
        if (UsedRing % 4 != 0) return $"used ring 0x{UsedRing:x} is not 4-byte aligned";
        if (!memory.Contains(DescriptorTable, DescriptorTableBytes)) return $"descriptor table 0x{DescriptorTable:x}+0x{DescriptorTableBytes:x} is outside guest RAM";
        if (!memory.Contains(AvailableRing, AvailableRingBytes)) return $"available ring 0x{AvailableRing:x}+0x{AvailableRingBytes:x} is outside guest RAM";
        if (!memory.Contains(UsedRing, UsedRingBytes)) return $"used ring 0x{UsedRing:x}+0x{UsedRingBytes:x} is outside guest RAM";
        return null;
    }
}
