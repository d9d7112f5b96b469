using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// The write end of a pipe, written without ever blocking the caller indefinitely: the descriptor is non-blocking and
/// a full pipe is waited for with poll, together with an interrupt eventfd. So a reader that stops reading (SIGSTOP,
/// a hung command) can neither hold a writer past <see cref="StallTimeout"/> nor delay <see cref="Interrupt"/> —
/// whereas close() of a descriptor another thread is blocked writing to does not wake that thread.
/// Owns its own duplicate of the pipe, so closing it is what gives the reader end-of-file.
/// </summary>
public sealed unsafe class PipeWriteStream : Stream
{
    private readonly FileDescriptor _fd;
    private readonly EventFd _interrupt = new();
    private volatile bool _interrupted;
    private int _disposed;

    private PipeWriteStream(FileDescriptor fd) => _fd = fd;

    /// <summary>
    /// Takes a private duplicate of <paramref name="pipe"/> (the caller closes its own), switches it to non-blocking
    /// mode and asks for a pipe buffer of <paramref name="pipeBytes"/> (best effort: the kernel caps it at
    /// /proc/sys/fs/pipe-max-size for unprivileged users).
    /// </summary>
    public static PipeWriteStream DuplicateOf(SafeHandle pipe, int pipeBytes = 1 << 20)
    {
        bool added = false;
        pipe.DangerousAddRef(ref added);
        int fd;
        try { fd = Libc.fcntl((int)pipe.DangerousGetHandle(), Libc.F_DUPFD_CLOEXEC, 0); }
        finally { if (added) pipe.DangerousRelease(); }
        LinuxException.Check(fd, "fcntl(F_DUPFD_CLOEXEC)");
        var owned = new FileDescriptor(fd);
        try
        {
            int flags = LinuxException.Check(Libc.fcntl(fd, Libc.F_GETFL, 0), "fcntl(F_GETFL)");
            LinuxException.Check(Libc.fcntl(fd, Libc.F_SETFL, flags | Libc.O_NONBLOCK), "fcntl(F_SETFL O_NONBLOCK)");
            if (pipeBytes > 0) Libc.fcntl(fd, Libc.F_SETPIPE_SZ, pipeBytes);
            return new PipeWriteStream(owned);
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>How long a write may wait for the reader to take any byte before it fails; infinite by default.</summary>
    public TimeSpan StallTimeout { get; set; } = Timeout.InfiniteTimeSpan;

    /// <summary>The kernel's pipe buffer size in bytes.</summary>
    public int PipeBufferBytes => Libc.fcntl(_fd.DangerousGetFd(), Libc.F_GETPIPE_SZ, 0);

    /// <summary>
    /// Makes the current and every later write fail at once with <see cref="OperationCanceledException"/>. Safe from
    /// any thread, at any time, also after disposal.
    /// </summary>
    public void Interrupt()
    {
        _interrupted = true;
        try { _interrupt.Signal(); }
        catch (ObjectDisposedException) { }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        while (buffer.Length > 0)
        {
            if (_interrupted) throw new OperationCanceledException("the write to the pipe was interrupted");
            nint n;
            fixed (byte* p = buffer) n = Libc.write(_fd, p, (nuint)buffer.Length);
            if (n > 0)
            {
                buffer = buffer[(int)n..];
                continue;
            }
            Errno errno = LastErrno.Get();
            if (n < 0 && errno == Errno.EINTR) continue;
            if (n < 0 && errno == Errno.EPIPE) throw new IOException("the reader closed the pipe (EPIPE)");
            if (n < 0 && errno != Errno.EAGAIN) throw new LinuxException("write(pipe)", errno);
            WaitWritable();
        }
    }

    /// <summary>Waits until the pipe has room, the reader is gone (the next write reports it), or an interrupt.</summary>
    private void WaitWritable()
    {
        var fds = stackalloc pollfd_t[2];
        fds[0] = new pollfd_t { fd = _fd.DangerousGetFd(), events = Libc.POLLOUT };
        fds[1] = new pollfd_t { fd = _interrupt.Handle.DangerousGetFd(), events = Libc.POLLIN };
        long timeoutMs = StallTimeout == Timeout.InfiniteTimeSpan ? -1 : Math.Max(1, (long)StallTimeout.TotalMilliseconds);
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        while (true)
        {
            long left = deadline == long.MaxValue ? -1 : deadline - Environment.TickCount64;
            if (left == 0 || left < -1)
                throw new TimeoutException($"the reader took no data for {StallTimeout.TotalSeconds:0.###} s");
            int ready = Libc.poll(fds, 2, (int)Math.Min(left, int.MaxValue));
            if (ready < 0)
            {
                Errno errno = LastErrno.Get();
                if (errno == Errno.EINTR) continue;
                throw new LinuxException("poll(pipe)", errno);
            }
            if (_interrupted || (fds[1].revents & Libc.POLLIN) != 0)
                throw new OperationCanceledException("the write to the pipe was interrupted");
            if (fds[0].revents != 0) return;
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void WriteByte(byte value) => Write([value]);
    public override void Flush() { }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => Volatile.Read(ref _disposed) == 0;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _fd.Dispose();
            _interrupt.Dispose();
        }
        base.Dispose(disposing);
    }
}
