using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>Owns one kernel file descriptor (KVM system, VM, vCPU, eventfd, epoll, userfaultfd) and closes it once.</summary>
public sealed class FileDescriptor : SafeHandle, IPollable
{
    internal FileDescriptor(int fd, bool ownsHandle = true) : base(-1, ownsHandle) => SetHandle(fd);

    /// <summary>fd 0, not owned: closing the result leaves the process's standard input open.</summary>
    public static FileDescriptor BorrowStandardInput() => new(0, ownsHandle: false);

    public override bool IsInvalid => handle == -1;

    /// <summary>The raw number, for kernel APIs that take an fd inside a struct (epoll_ctl, irqfd).</summary>
    internal int DangerousGetFd() => (int)handle;

    SafeHandle IPollable.PollHandle => this;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;

    internal static FileDescriptor Open(string path, int flags, string operation)
    {
        int fd = Libc.open(path, flags);
        if (fd < 0) throw new LinuxException(operation, LastErrno.Get(), path);
        return new FileDescriptor(fd);
    }
}
