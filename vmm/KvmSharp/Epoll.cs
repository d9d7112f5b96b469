using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>Owns an epoll instance. Registrations carry a caller-chosen 64-bit token returned with each event.</summary>
public sealed unsafe class Epoll : IDisposable
{
    private readonly FileDescriptor _fd;

    public Epoll()
    {
        int fd = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        LinuxException.Check(fd, "epoll_create1");
        _fd = new FileDescriptor(fd);
    }

    public void Add(IPollable target, EpollEvents events, ulong token) => Control(Libc.EPOLL_CTL_ADD, target.PollHandle, events, token);

    public void Remove(IPollable target) => Control(Libc.EPOLL_CTL_DEL, target.PollHandle, EpollEvents.None, 0);

    private void Control(int op, SafeHandle target, EpollEvents events, ulong token)
    {
        bool added = false;
        try
        {
            target.DangerousAddRef(ref added);
            var ev = new EpollEvent(events, token);
            LinuxException.Check(Libc.epoll_ctl(_fd, op, (int)target.DangerousGetHandle(), &ev), "epoll_ctl");
        }
        finally
        {
            if (added) target.DangerousRelease();
        }
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> (-1 = forever); EINTR counts as zero events.</summary>
    public int Wait(Span<EpollEvent> events, int timeoutMs)
    {
        fixed (EpollEvent* p = events)
        {
            int n = Libc.epoll_wait(_fd, p, events.Length, timeoutMs);
            if (n < 0)
            {
                Errno errno = LastErrno.Get();
                if (errno == Errno.EINTR) return 0;
                throw new LinuxException("epoll_wait", errno);
            }
            return n;
        }
    }

    public void Dispose() => _fd.Dispose();
}
