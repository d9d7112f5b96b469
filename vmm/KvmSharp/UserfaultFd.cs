using System.Runtime.InteropServices;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// Owns a userfaultfd. Thin: API handshake, register/unregister, write-protect, copy/zero-page/move, and reading fault
/// messages without allocating (the fault path of a live snapshot must not allocate). Every range is part of a
/// <see cref="MemoryMapping"/>, bounds-checked and held alive for the call, so no caller computes a host address.
/// </summary>
public sealed unsafe class UserfaultFd : IPollable, IDisposable
{
    private readonly FileDescriptor _fd;

    private UserfaultFd(FileDescriptor fd, UffdFeatures features)
    {
        _fd = fd;
        Features = features;
    }

    /// <summary>The features the kernel granted.</summary>
    public UffdFeatures Features { get; }

    SafeHandle IPollable.PollHandle => _fd;

    /// <summary>
    /// Creates a non-blocking userfaultfd and negotiates <paramref name="requiredFeatures"/>. Names the missing features
    /// in the error, and explains permission failures (vm.unprivileged_userfaultfd).
    /// </summary>
    public static UserfaultFd Create(UffdFeatures requiredFeatures, Func<UffdFeatures, string>? describeFeatures = null) =>
        Create(requiredFeatures, UffdFeatures.None, describeFeatures);

    /// <summary>
    /// Like <see cref="Create(UffdFeatures, Func{UffdFeatures, string}?)"/>, also enabling those of
    /// <paramref name="optionalFeatures"/> that the kernel offers; <see cref="Features"/> says which were granted.
    /// </summary>
    public static UserfaultFd Create(UffdFeatures requiredFeatures, UffdFeatures optionalFeatures, Func<UffdFeatures, string>? describeFeatures = null)
    {
        var handle = Open();
        try
        {
            // Probe what the kernel offers first, so the error can name exactly what is missing.
            var probe = new uffdio_api { api = Uffd.UFFD_API, features = 0 };
            LinuxException.Check(Libc.ioctl(handle, Uffd.UFFDIO_API, &probe), "UFFDIO_API");
            var offered = (UffdFeatures)probe.features;
            UffdFeatures missing = requiredFeatures & ~offered;
            if (missing != 0)
                throw new LinuxException("UFFDIO_API", Errno.EINVAL,
                    "the kernel's userfaultfd lacks features " + (describeFeatures?.Invoke(missing) ?? missing.ToString()));
            handle.Dispose();

            // A userfaultfd accepts UFFDIO_API once; open a fresh one for the real handshake.
            handle = Open();
            var api = new uffdio_api { api = Uffd.UFFD_API, features = (ulong)(requiredFeatures | (optionalFeatures & offered)) };
            LinuxException.Check(Libc.ioctl(handle, Uffd.UFFDIO_API, &api), "UFFDIO_API");
            return new UserfaultFd(handle, (UffdFeatures)api.features);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static FileDescriptor Open()
    {
        long fd = Libc.syscall(Libc.SYS_userfaultfd, Libc.O_CLOEXEC | Libc.O_NONBLOCK, 0, 0);
        if (fd >= 0) return new FileDescriptor((int)fd);
        Errno errno = LastErrno.Get();
        string hint = errno switch
        {
            Errno.EPERM => "userfaultfd is not permitted: run as root, or set sysctl vm.unprivileged_userfaultfd=1",
            Errno.ENOSYS => "this kernel has no userfaultfd (CONFIG_USERFAULTFD)",
            _ => "cannot create a userfaultfd",
        };
        throw new LinuxException("userfaultfd", errno, hint);
    }

    /// <summary>Registers the whole mapping in the given modes; returns the operations the range supports.</summary>
    public UffdRangeOperations Register(MemoryMapping mapping, UffdRegisterMode mode)
    {
        using var lease = mapping.Lease(0, mapping.Length);
        var reg = new uffdio_register { range = new uffdio_range { start = lease.Address, len = mapping.Length }, mode = (ulong)mode };
        LinuxException.Check(Libc.ioctl(_fd, Uffd.UFFDIO_REGISTER, &reg), "UFFDIO_REGISTER");
        return (UffdRangeOperations)reg.ioctls;
    }

    public void Unregister(MemoryMapping mapping)
    {
        using var lease = mapping.Lease(0, mapping.Length);
        var range = new uffdio_range { start = lease.Address, len = mapping.Length };
        LinuxException.Check(Libc.ioctl(_fd, Uffd.UFFDIO_UNREGISTER, &range), "UFFDIO_UNREGISTER");
    }

    /// <summary>
    /// Sets or clears write protection on [offset, offset+length) of a registered mapping. Clearing wakes the threads
    /// blocked on it unless <paramref name="dontWake"/>. Retries EAGAIN (the kernel asks for it while the mm is changing).
    /// </summary>
    public void WriteProtect(MemoryMapping mapping, ulong offset, ulong length, bool protect, bool dontWake = false)
    {
        using var lease = mapping.Lease(offset, length);
        var wp = new uffdio_writeprotect
        {
            range = new uffdio_range { start = lease.Address, len = length },
            mode = (protect ? Uffd.UFFDIO_WRITEPROTECT_MODE_WP : 0) | (dontWake ? Uffd.UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0),
        };
        while (true)
        {
            if (Libc.ioctl(_fd, Uffd.UFFDIO_WRITEPROTECT, &wp) == 0) return;
            Errno errno = LastErrno.Get();
            if (errno != Errno.EAGAIN) throw new LinuxException("UFFDIO_WRITEPROTECT", errno);
        }
    }

    /// <summary>Wakes the threads blocked on faults in [offset, offset+length).</summary>
    public void Wake(MemoryMapping mapping, ulong offset, ulong length)
    {
        using var lease = mapping.Lease(offset, length);
        var range = new uffdio_range { start = lease.Address, len = length };
        LinuxException.Check(Libc.ioctl(_fd, Uffd.UFFDIO_WAKE, &range), "UFFDIO_WAKE");
    }

    /// <summary>
    /// UFFDIO_COPY of <paramref name="source"/> into the missing range at <paramref name="offset"/>; the races callers
    /// handle (EEXIST: already there, EAGAIN: retry) come back as the result's error, not as an exception.
    /// </summary>
    public UffdResult TryCopy(MemoryMapping mapping, ulong offset, ReadOnlySpan<byte> source)
    {
        using var lease = mapping.Lease(offset, (ulong)source.Length);
        fixed (byte* p = source)
        {
            var copy = new uffdio_copy { dst = lease.Address, src = (ulong)p, len = (ulong)source.Length };
            int rc = Libc.ioctl(_fd, Uffd.UFFDIO_COPY, &copy);
            // A partial copy fails with EAGAIN but reports its progress: the caller continues after it.
            return UffdResult.From(rc, copy.copy);
        }
    }

    /// <summary>UFFDIO_ZEROPAGE of [offset, offset+length): maps the shared zero page there.</summary>
    public UffdResult TryZeroPage(MemoryMapping mapping, ulong offset, ulong length)
    {
        using var lease = mapping.Lease(offset, length);
        var zp = new uffdio_zeropage { range = new uffdio_range { start = lease.Address, len = length } };
        int rc = Libc.ioctl(_fd, Uffd.UFFDIO_ZEROPAGE, &zp);
        return UffdResult.From(rc, zp.zeropage);
    }

    /// <summary>
    /// UFFDIO_MOVE (needs <see cref="UffdFeatures.Move"/>): moves the anonymous pages of
    /// [<paramref name="sourceOffset"/>, +length) of <paramref name="source"/> into the missing range at
    /// <paramref name="offset"/>, without copying; a 2 MiB-aligned transparent huge page moves as one.
    /// </summary>
    public UffdResult TryMove(MemoryMapping mapping, ulong offset, MemoryMapping source, ulong sourceOffset, ulong length)
    {
        using var lease = mapping.Lease(offset, length);
        using var from = source.Lease(sourceOffset, length);
        var move = new uffdio_move { dst = lease.Address, src = from.Address, len = length };
        int rc = Libc.ioctl(_fd, Uffd.UFFDIO_MOVE, &move);
        return UffdResult.From(rc, move.move);
    }

    /// <summary>Reads up to <paramref name="messages"/>.Length queued messages; 0 when none (non-blocking fd).</summary>
    public int ReadMessages(Span<UffdMessage> messages)
    {
        fixed (UffdMessage* p = messages)
        {
            nint n = Libc.read(_fd, p, (nuint)(messages.Length * sizeof(UffdMessage)));
            if (n < 0)
            {
                Errno errno = LastErrno.Get();
                if (errno == Errno.EAGAIN || errno == Errno.EINTR) return 0;
                throw new LinuxException("read(userfaultfd)", errno);
            }
            return (int)(n / sizeof(UffdMessage));
        }
    }

    public void Dispose() => _fd.Dispose();
}
