using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;
using Microsoft.Win32.SafeHandles;

namespace KvmSharp;

/// <summary>Host calls the .NET library lacks, for device back ends and the snapshot format: getrandom, fallocate,
/// O_DIRECT opens, lseek(SEEK_DATA), fsync of a directory.</summary>
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
                    Errno errno = LastErrno.Get();
                    if (errno == Errno.EINTR) continue;
                    throw new LinuxException("getrandom", errno);
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
        Errno errno = LastErrno.Get();
        if (errno is Errno.EOPNOTSUPP or Errno.ENOSYS) return false;
        throw new IOException($"fallocate(PUNCH_HOLE) failed: errno {errno}");
    }

    /// <summary>
    /// lseek(SEEK_DATA): the first offset at or after <paramref name="offset"/> that may hold data;
    /// <see cref="long.MaxValue"/> when only a hole follows; <paramref name="offset"/> itself where the file system
    /// cannot tell (then read it).
    /// </summary>
    public static long NextData(SafeFileHandle file, long offset)
    {
        long result;
        try { result = Libc.lseek(file, offset, Libc.SEEK_DATA); }
        catch (ObjectDisposedException) { return offset; } // closed meanwhile: the caller's read reports it
        if (result >= offset) return result;
        return result < 0 && LastErrno.Get() == Errno.ENXIO ? long.MaxValue : offset;
    }

    /// <summary>
    /// fsync of a directory, so that a rename or create in it is durable. Best effort: a directory that cannot be
    /// opened or synced (some file systems refuse) returns false.
    /// </summary>
    public static bool TryFlushDirectory(string directory)
    {
        int fd = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0) return false;
        using var handle = new FileDescriptor(fd);
        return Libc.fsync(handle) == 0;
    }

    /// <summary>Opens <paramref name="path"/> with O_DIRECT, or returns null with the errno when the file system refuses it
    /// (tmpfs: EINVAL). The handle takes no lock: the buffered handle of the same file holds it.</summary>
    public static SafeFileHandle? TryOpenDirect(string path, bool readOnly, out Errno errno)
    {
        int fd = Libc.open(path, (readOnly ? Libc.O_RDONLY : Libc.O_RDWR) | Libc.O_DIRECT | Libc.O_CLOEXEC);
        errno = fd < 0 ? LastErrno.Get() : Errno.None;
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }
}
