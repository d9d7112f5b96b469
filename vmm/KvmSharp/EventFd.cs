using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>Owns an eventfd: a counter other threads bump to wake an epoll loop.</summary>
public sealed unsafe class EventFd : IPollable, IDisposable
{
    internal FileDescriptor Handle { get; }

    SafeHandle IPollable.PollHandle => Handle;

    public EventFd(bool nonBlocking = true)
    {
        int fd = Libc.eventfd(0, Libc.EFD_CLOEXEC | (nonBlocking ? Libc.EFD_NONBLOCK : 0));
        LinuxException.Check(fd, "eventfd");
        Handle = new FileDescriptor(fd);
    }

    public void Signal(ulong value = 1)
    {
        // EAGAIN only when the counter would overflow: a wake-up is already pending, so ignoring it is correct.
        Libc.write(Handle, &value, 8);
    }

    /// <summary>Reads and resets the counter; 0 when nothing was pending.</summary>
    public ulong Drain()
    {
        ulong value = 0;
        nint n = Libc.read(Handle, &value, 8);
        if (n < 0)
        {
            Errno errno = LastErrno.Get();
            if (errno == Errno.EAGAIN) return 0;
            throw new LinuxException("read(eventfd)", errno);
        }
        return value;
    }

    public void Dispose() => Handle.Dispose();
}
