using System.Runtime.InteropServices;
using KvmSharp.Interop;
using Microsoft.Win32.SafeHandles;

namespace KvmSharp;

/// <summary>Host calls the .NET library lacks, for device back ends: getrandom, fallocate, O_DIRECT opens.</summary>
public static unsafe class HostIo
{
    /// <summary>Fills <paramref name="destination"/> from the kernel's CSPRNG (getrandom(2), blocking until seeded).</summary>
    public static void GetRandom(Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            int done = 0;
            while (done < destination.Length)
            {
                nint n = Libc.getrandom(p + done, (nuint)(destination.Length - done), 0);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Libc.EINTR) continue;
                    throw new KvmException("getrandom", errno);
                }
                done += (int)n;
            }
        }
    }

    /// <summary>FALLOC_FL_PUNCH_HOLE | KEEP_SIZE: false when the file system cannot (EOPNOTSUPP), the caller then
    /// writes zeros; other failures throw <see cref="IOException"/>.</summary>
    public static bool TryPunchHole(SafeFileHandle file, long offset, long length)
    {
        if (Libc.fallocate(file, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offset, length) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno is Libc.EOPNOTSUPP or Libc.ENOSYS) return false;
        throw new IOException($"fallocate(PUNCH_HOLE) failed: errno {errno}");
    }

    /// <summary>
    /// lseek(SEEK_DATA): the first offset at or after <paramref name="offset"/> that may hold data;
    /// <see cref="long.MaxValue"/> when only a hole follows; <paramref name="offset"/> itself where the file system
    /// cannot tell (then read it).
    /// </summary>
    public static long NextData(SafeFileHandle file, long offset)
    {
        long result = Libc.lseek(file, offset, Libc.SEEK_DATA);
        if (result >= offset) return result;
        return result < 0 && Marshal.GetLastPInvokeError() == Libc.ENXIO ? long.MaxValue : offset;
    }

    /// <summary>Opens <paramref name="path"/> with O_DIRECT, or returns null with the errno when the file system refuses it
    /// (tmpfs: EINVAL). The handle takes no lock: the buffered handle of the same file holds it.</summary>
    public static SafeFileHandle? TryOpenDirect(string path, bool readOnly, out int errno)
    {
        int fd = Libc.open(path, (readOnly ? Libc.O_RDONLY : Libc.O_RDWR) | Libc.O_DIRECT | Libc.O_CLOEXEC);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }
}
