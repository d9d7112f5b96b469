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
    private const int O_RDONLY = 0;
    private const int O_DIRECTORY = 0x10000;
    private const long SYS_lseek = 8;   // x86_64
    private const long SYS_fsync = 74;  // x86_64
    private const int SEEK_DATA = 3;
    private const int ENXIO = 6;

    public static void FlushDirectory(string directory)
    {
        int fd = Libc.open(directory, O_RDONLY | O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0) return;
        using var handle = new FileDescriptor(fd);
        Libc.syscall(SYS_fsync, fd, 0, 0);
    }

    /// <summary>
    /// Offset of the first byte at or after <paramref name="offset"/> that may hold data; <see cref="long.MaxValue"/>
    /// when only a hole follows. Where the file system can't tell, returns <paramref name="offset"/> (read it).
    /// </summary>
    public static long NextData(SafeFileHandle handle, long offset)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            long fd = handle.DangerousGetHandle();
            long result = Libc.syscall(SYS_lseek, fd, offset, SEEK_DATA);
            if (result >= offset) return result;
            return result < 0 && Marshal.GetLastPInvokeError() == ENXIO ? long.MaxValue : offset;
        }
        catch (ObjectDisposedException)
        {
            return offset;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }
}
