using System.Runtime.InteropServices;

namespace KvmSharp;

/// <summary>The Linux errno values MiniVmm tells apart (x86-64 numbering); any other value still round-trips.</summary>
public enum Errno
{
    None = 0,
    EPERM = 1,
    ENOENT = 2,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ENOTTY = 25,
    EFBIG = 27,
    ENOSPC = 28,
    ESPIPE = 29,
    EROFS = 30,
    EPIPE = 32,
    ERANGE = 34,
    ENOSYS = 38,
    EMSGSIZE = 90,
    EOPNOTSUPP = 95,
    ENOBUFS = 105,
    ETIMEDOUT = 110,
    EDQUOT = 122,
}

/// <summary>Reading the calling thread's errno after a P/Invoke with SetLastError.</summary>
internal static class LastErrno
{
    public static Errno Get() => (Errno)Marshal.GetLastPInvokeError();
}
