using System.Runtime.InteropServices;

namespace MiniVmm.Devices.Virtio.Queue;

/// <summary>struct virtq_desc (virtio 1.2 §2.7.5): one buffer of a chain, 16 bytes, little-endian.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtqDescriptor
{
    public const int Size = 16;
    public const ushort FlagNext = 1;
    public const ushort FlagWrite = 2;
    public const ushort FlagIndirect = 4;

    public ulong Address;
    public uint Length;
    public ushort Flags;
    public ushort Next;

    public readonly bool HasNext => (Flags & FlagNext) != 0;
    public readonly bool IsWriteOnly => (Flags & FlagWrite) != 0;
    public readonly bool IsIndirect => (Flags & FlagIndirect) != 0;
}

/// <summary>struct virtq_used_elem: which chain the device used and how many bytes it wrote into it.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtqUsedElement
{
    public const int Size = 8;
    public uint Id;
    public uint Length;
}
