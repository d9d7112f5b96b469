using KvmSharp;
using Microsoft.Win32.SafeHandles;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Devices.Virtio.Rng;

namespace MiniVmm.Machine.Devices;

/// <summary>virtio-rng's entropy: the host kernel's getrandom(2).</summary>
public sealed class GetRandomEntropy : IEntropySource
{
    public static readonly GetRandomEntropy Instance = new();
    public void Fill(Span<byte> destination) => HostIo.GetRandom(destination);
}

/// <summary>Hole punching for virtio-blk discard / write-zeroes with unmap.</summary>
public sealed class FallocateFileSpace : IFileSpace
{
    public static readonly FallocateFileSpace Instance = new();
    public bool TryPunchHole(SafeFileHandle file, long offset, long length) => HostIo.TryPunchHole(file, offset, length);
    public long NextData(SafeFileHandle file, long offset) => HostIo.NextData(file, offset);
}
