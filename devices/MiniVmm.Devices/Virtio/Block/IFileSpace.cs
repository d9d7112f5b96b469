using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Devices.Virtio.Block;

/// <summary>Host file-space operations the .NET file API lacks (fallocate), provided by the composition root.</summary>
public interface IFileSpace
{
    /// <summary>Deallocates [offset, offset+length) so it reads as zeros (FALLOC_FL_PUNCH_HOLE). False when the host
    /// file system cannot; the caller then writes zeros.</summary>
    bool TryPunchHole(SafeFileHandle file, long offset, long length);

    /// <summary>The first offset at or after <paramref name="offset"/> that may hold data (lseek SEEK_DATA);
    /// <see cref="long.MaxValue"/> when only a hole follows. The default cannot tell and returns the offset itself.</summary>
    long NextData(SafeFileHandle file, long offset) => offset;
}
