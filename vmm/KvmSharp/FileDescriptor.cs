using System.Runtime.InteropServices;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>Owns one kernel file descriptor (KVM system, VM, vCPU, eventfd, epoll, userfaultfd) and closes it once.</summary>
public sealed class FileDescriptor : SafeHandle
{
    public FileDescriptor(int fd, bool ownsHandle = true) : base(-1, ownsHandle) => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    /// <summary>The raw number, for kernel APIs that take an fd inside a struct (epoll_ctl, irqfd).</summary>
    public int DangerousGetFd() => (int)handle;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;

    public static FileDescriptor Open(string path, int flags, string operation)
    {
        int fd = Libc.open(path, flags);
        if (fd < 0) throw new KvmException(operation, Marshal.GetLastPInvokeError(), path);
        return new FileDescriptor(fd);
    }
}
