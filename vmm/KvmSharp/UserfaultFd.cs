using System.Runtime.InteropServices;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// Owns a userfaultfd. Thin: API handshake, register/unregister, write-protect, copy/zero-page, and reading fault
/// messages without allocating (the fault path of a live snapshot must not allocate).
/// </summary>
public sealed unsafe class UserfaultFd : IDisposable
{
    public FileDescriptor Handle { get; }
    public ulong Features { get; }

    private UserfaultFd(FileDescriptor fd, ulong features)
    {
        Handle = fd;
        Features = features;
    }

    /// <summary>
    /// Creates a non-blocking userfaultfd and negotiates <paramref name="requiredFeatures"/>. Names the missing features
    /// in the error, and explains permission failures (vm.unprivileged_userfaultfd).
    /// </summary>
    public static UserfaultFd Create(ulong requiredFeatures, Func<ulong, string>? describeFeatures = null) =>
        Create(requiredFeatures, optionalFeatures: 0, describeFeatures);

    /// <summary>
    /// Like <see cref="Create(ulong, Func{ulong, string}?)"/>, also enabling those of <paramref name="optionalFeatures"/>
    /// that the kernel offers; <see cref="Features"/> says which were granted.
    /// </summary>
    public static UserfaultFd Create(ulong requiredFeatures, ulong optionalFeatures, Func<ulong, string>? describeFeatures = null)
    {
        long fd = Libc.syscall(Libc.SYS_userfaultfd, Libc.O_CLOEXEC | Libc.O_NONBLOCK, 0, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            string hint = errno switch
            {
                Libc.EPERM => "userfaultfd is not permitted: run as root, or set sysctl vm.unprivileged_userfaultfd=1",
                38 /* ENOSYS */ => "this kernel has no userfaultfd (CONFIG_USERFAULTFD)",
                _ => "cannot create a userfaultfd",
            };
            throw new KvmException("userfaultfd", errno, hint);
        }
        var handle = new FileDescriptor((int)fd);
        try
        {
            // Probe what the kernel offers first, so the error can name exactly what is missing.
            var probe = new uffdio_api { api = Uffd.UFFD_API, features = 0 };
            KvmException.Check(Libc.ioctl(handle, Uffd.UFFDIO_API, &probe), "UFFDIO_API");
            ulong missing = requiredFeatures & ~probe.features;
            if (missing != 0)
                throw new KvmException("UFFDIO_API", Libc.EINVAL,
                    "the kernel's userfaultfd lacks features " + (describeFeatures?.Invoke(missing) ?? $"0x{missing:x}"));
            handle.Dispose();

            // A userfaultfd accepts UFFDIO_API once; open a fresh one for the real handshake.
            fd = Libc.syscall(Libc.SYS_userfaultfd, Libc.O_CLOEXEC | Libc.O_NONBLOCK, 0, 0);
            KvmException.Check(fd, "userfaultfd");
            handle = new FileDescriptor((int)fd);
            var api = new uffdio_api { api = Uffd.UFFD_API, features = requiredFeatures | (optionalFeatures & probe.features) };
            KvmException.Check(Libc.ioctl(handle, Uffd.UFFDIO_API, &api), "UFFDIO_API");
            return new UserfaultFd(handle, api.features);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Registers [start, start+length) in the given modes; returns the ioctls the range supports.</summary>
    public ulong Register(nint start, ulong length, ulong mode)
    {
        var reg = new uffdio_register { range = new uffdio_range { start = (ulong)start, len = length }, mode = mode };
        KvmException.Check(Libc.ioctl(Handle, Uffd.UFFDIO_REGISTER, &reg), "UFFDIO_REGISTER");
        return reg.ioctls;
    }

    public void Unregister(nint start, ulong length)
    {
        var range = new uffdio_range { start = (ulong)start, len = length };
        KvmException.Check(Libc.ioctl(Handle, Uffd.UFFDIO_UNREGISTER, &range), "UFFDIO_UNREGISTER");
    }

    /// <summary>
    /// Sets or clears write protection on a range. Clearing wakes the threads blocked on it unless
    /// <paramref name="dontWake"/>. Retries EAGAIN (the kernel asks for it while the mm is changing).
    /// </summary>
    public void WriteProtect(nint start, ulong length, bool protect, bool dontWake = false)
    {
        var wp = new uffdio_writeprotect
        {
            range = new uffdio_range { start = (ulong)start, len = length },
            mode = (protect ? Uffd.UFFDIO_WRITEPROTECT_MODE_WP : 0) | (dontWake ? Uffd.UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0),
        };
        while (true)
        {
            if (Libc.ioctl(Handle, Uffd.UFFDIO_WRITEPROTECT, &wp) == 0) return;
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EAGAIN) throw new KvmException("UFFDIO_WRITEPROTECT", errno);
        }
    }

    public void Wake(nint start, ulong length)
    {
        var range = new uffdio_range { start = (ulong)start, len = length };
        KvmException.Check(Libc.ioctl(Handle, Uffd.UFFDIO_WAKE, &range), "UFFDIO_WAKE");
    }

    /// <summary>UFFDIO_COPY of one block; returns -errno for the races callers handle (EEXIST, EAGAIN), bytes otherwise.</summary>
    public long TryCopy(nint destination, nint source, ulong length, ulong mode = 0)
    {
        var copy = new uffdio_copy { dst = (ulong)destination, src = (ulong)source, len = length, mode = mode };
        if (Libc.ioctl(Handle, Uffd.UFFDIO_COPY, &copy) == 0) return copy.copy;
        // A partial copy fails with EAGAIN but reports its progress: return that, the caller continues after it.
        return copy.copy > 0 ? copy.copy : -Marshal.GetLastPInvokeError();
    }

    /// <summary>UFFDIO_COPY from a managed span (pinned for the call).</summary>
    public long TryCopy(nint destination, ReadOnlySpan<byte> source, ulong mode = 0)
    {
        fixed (byte* p = source) return TryCopy(destination, (nint)p, (ulong)source.Length, mode);
    }

    /// <summary>
    /// UFFDIO_MOVE (needs <see cref="Uffd.UFFD_FEATURE_MOVE"/>): moves the anonymous pages at <paramref name="source"/>
    /// into the missing range at <paramref name="destination"/>, without copying; a 2 MiB-aligned transparent huge page
    /// moves as one. Returns the bytes moved, or -errno (EEXIST: part of the destination is populated, EAGAIN: retry).
    /// </summary>
    public long TryMove(nint destination, nint source, ulong length, ulong mode = 0)
    {
        var move = new uffdio_move { dst = (ulong)destination, src = (ulong)source, len = length, mode = mode };
        if (Libc.ioctl(Handle, Uffd.UFFDIO_MOVE, &move) == 0) return move.move;
        return move.move > 0 ? move.move : -Marshal.GetLastPInvokeError();
    }

    public long TryZeroPage(nint destination, ulong length, ulong mode = 0)
    {
        var zp = new uffdio_zeropage { range = new uffdio_range { start = (ulong)destination, len = length }, mode = mode };
        if (Libc.ioctl(Handle, Uffd.UFFDIO_ZEROPAGE, &zp) == 0) return zp.zeropage;
        return zp.zeropage > 0 ? zp.zeropage : -Marshal.GetLastPInvokeError();
    }

    /// <summary>Reads up to <paramref name="messages"/>.Length queued messages; 0 when none (non-blocking fd).</summary>
    public int ReadMessages(Span<uffd_msg> messages)
    {
        fixed (uffd_msg* p = messages)
        {
            nint n = Libc.read(Handle, p, (nuint)(messages.Length * sizeof(uffd_msg)));
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EAGAIN || errno == Libc.EINTR) return 0;
                throw new KvmException("read(userfaultfd)", errno);
            }
            return (int)(n / sizeof(uffd_msg));
        }
    }

    public void Dispose() => Handle.Dispose();
}
