using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// A KVM ioeventfd: guest writes to one MMIO (or PIO) address are turned into eventfd signals inside KVM, without an
/// exit to user space. Owns its eventfd and its registration; <see cref="Dispose"/> deassigns, then closes the fd.
/// The VM must outlive it. The eventfd is blocking: <see cref="Wait"/> sleeps in read(2) until the guest (or
/// <see cref="Wake"/>) signals.
/// </summary>
public sealed unsafe class IoEventFd : IPollable, IDisposable
{
    private readonly FileDescriptor _vm;
    private readonly EventFd _event;
    private kvm_ioeventfd _registration;
    private int _disposed;

    internal IoEventFd(FileDescriptor vm, ulong address, uint length, ulong? dataMatch, bool pio)
    {
        if (length is not (0 or 1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(length), length, "ioeventfd length must be 0, 1, 2, 4 or 8");
        _vm = vm;
        _event = new EventFd(nonBlocking: false);
        _registration = new kvm_ioeventfd
        {
            addr = address,
            len = length,
            fd = _event.Handle.DangerousGetFd(),
            datamatch = dataMatch ?? 0,
            flags = (dataMatch.HasValue ? Kvm.KVM_IOEVENTFD_FLAG_DATAMATCH : 0) | (pio ? Kvm.KVM_IOEVENTFD_FLAG_PIO : 0),
        };
        fixed (kvm_ioeventfd* p = &_registration)
        {
            int rc = Libc.ioctl(_vm, Kvm.KVM_IOEVENTFD, p);
            if (rc < 0)
            {
                Errno errno = LastErrno.Get();
                _event.Dispose();
                throw new KvmException("KVM_IOEVENTFD", errno, $"cannot register an ioeventfd at 0x{address:x}+{length}");
            }
        }
    }

    public ulong Address => _registration.addr;

    /// <summary>The eventfd, for an <see cref="Epoll"/> that waits on it together with other fds (then call
    /// <see cref="Wait"/> only after epoll reported it readable: the fd is blocking).</summary>
    SafeHandle IPollable.PollHandle => _event.Handle;

    /// <summary>Blocks until signalled; returns the number of signals since the last wait (reset to 0).</summary>
    public ulong Wait() => _event.Drain();

    /// <summary>Signals the eventfd from user space (to wake a thread blocked in <see cref="Wait"/>).</summary>
    public void Wake() => _event.Signal();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        var deassign = _registration;
        deassign.flags |= Kvm.KVM_IOEVENTFD_FLAG_DEASSIGN;
        // Failure here means the VM fd is already gone, which drops every registration anyway.
        Libc.ioctl(_vm, Kvm.KVM_IOEVENTFD, &deassign);
        _event.Dispose();
    }
}
