using System.Runtime.InteropServices;

namespace KvmSharp.Interop;

/// <summary>Raw libc imports. No logic: callers check the result with <see cref="Errno"/> helpers.</summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc.so.6";

    public const int O_RDWR = 2;
    public const int O_CLOEXEC = 0x80000;
    public const int O_NONBLOCK = 0x800;
    public const int O_RDONLY = 0;
    public const int O_DIRECTORY = 0x10000;
    public const int SEEK_DATA = 3;
    public const int ENXIO = 6;

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EFAULT = 14;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int ENOENT = 2;
    public const int EPERM = 1;
    public const int EACCES = 13;
    public const int ENOENT_ = 2;

    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    public const int MADV_DONTNEED = 4, MADV_HUGEPAGE = 14, MADV_NOHUGEPAGE = 15, MADV_POPULATE_READ = 22, MADV_POPULATE_WRITE = 23;
    public static readonly nint MAP_FAILED = -1;

    public const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;

    public const long SYS_userfaultfd = 323;
    public const long SYS_gettid = 186;
    public const long SYS_tgkill = 234;

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int ioctl(SafeHandle fd, nuint request, void* arg);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int ioctl_int(SafeHandle fd, nuint request, nint arg);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int ioctl_fd(int fd, nuint request, nint arg);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint mmap_handle(nint addr, nuint length, int prot, int flags, SafeHandle fd, long offset);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int madvise(nint addr, nuint length, int advice);

    public const int SCHED_OTHER = 0, SCHED_FIFO = 1;

    /// <summary>sched_setscheduler(2); <paramref name="priority"/> points at a <c>struct sched_param</c> (one int).</summary>
    [LibraryImport(Lib, SetLastError = true)]
    public static partial int sched_setscheduler(int pid, int policy, int* priority);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int mprotect(nint addr, nuint length, int prot);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint read(SafeHandle fd, void* buf, nuint count);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint write(SafeHandle fd, void* buf, nuint count);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_ctl(SafeHandle epfd, int op, int fd, void* ev);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_wait(SafeHandle epfd, void* events, int maxevents, int timeout);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial long syscall(long number, long a1, long a2, long a3);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int getpid();

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int sigaction(int signum, sigaction_t* act, sigaction_t* oldact);

    [LibraryImport(Lib)]
    public static partial int isatty(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int tcgetattr(int fd, termios_t* termios);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int tcsetattr(int fd, int optionalActions, termios_t* termios);

    [LibraryImport(Lib)]
    public static partial void cfmakeraw(termios_t* termios);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int pthread_sigmask(int how, ulong* set, ulong* oldset);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fsync(SafeHandle fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial long lseek(SafeHandle fd, long offset, int whence);

    public const int F_DUPFD_CLOEXEC = 1030, F_GETFL = 3, F_SETFL = 4, F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032;
    public const int EPIPE = 32, ENOSYS = 38, EOPNOTSUPP = 95;
    public const short POLLIN = 0x1, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int stat(string path, stat_t* buf);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int poll(pollfd_t* fds, nuint nfds, int timeout);

    public const int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02;
    public const int O_DIRECT = 0x4000;
    public const uint GRND_NONBLOCK = 1;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fallocate(SafeHandle fd, int mode, long offset, long len);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint getrandom(void* buf, nuint buflen, uint flags);
}

/// <summary>struct stat on x86-64 (144 bytes); only st_mode (offset 24) and st_size (offset 48) are read.</summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
internal struct stat_t
{
    [FieldOffset(24)] public uint st_mode;
    [FieldOffset(48)] public long st_size;
}

/// <summary>struct pollfd: fd, requested events, returned events (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct pollfd_t
{
    public int fd;
    public short events;
    public short revents;
}

/// <summary>glibc's struct termios on x86-64 (60 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct termios_t
{
    public uint c_iflag, c_oflag, c_cflag, c_lflag;
    public byte c_line;
    public fixed byte c_cc[32];
    public uint c_ispeed, c_ospeed;
}

/// <summary>glibc's struct sigaction on x86-64 (152 bytes): handler, 1024-bit mask, flags, restorer.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct sigaction_t
{
    public nint sa_handler;
    public fixed ulong sa_mask[16];
    public int sa_flags;
    public int padding;
    public nint sa_restorer;
}
