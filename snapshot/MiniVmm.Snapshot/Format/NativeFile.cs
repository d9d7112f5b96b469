using System.Runtime.InteropServices;
using KvmSharp;
using KvmSharp.Interop;
using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// The two file-system calls .NET lacks: fsync of a directory (so a rename is durable) and lseek(SEEK_DATA) (so Verify
/// can skip holes instead of reading gigabytes of zeros). Both are best effort and go through KvmSharp's libc layer.
/// </summary>
internal static class NativeFile
{
    public static void FlushDirectory(string directory)
    {
        int fd = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0) return;
        using var handle = new FileDescriptor(fd);
        Libc.fsync(handle);
    }

    /// <summary>
    /// Offset of the first byte at or after <paramref name="offset"/> that may hold data; <see cref="long.MaxValue"/>
    /// when only a hole follows. Where the file system can't tell, returns <paramref name="offset"/> (read it).
    /// </summary>
    public static long NextData(SafeFileHandle handle, long offset)
    {
        try
        {
            long result = Libc.lseek(handle, offset, Libc.SEEK_DATA);
            if (result >= offset) return result;
            return result < 0 && Marshal.GetLastPInvokeError() == Libc.ENXIO ? long.MaxValue : offset;
        }
        catch (ObjectDisposedException)
        {
            return offset;
        }
    }
}
