using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// A KVM irqfd: signalling its eventfd injects an interrupt on a GSI of the in-kernel irqchip (for an IOAPIC pin, a
/// pulse: assert then de-assert) from any thread, without KVM_IRQ_LINE's ioctl round trip through the VM fd lock.
/// Owns the eventfd and the registration; <see cref="Dispose"/> deassigns, then closes the fd. The VM must outlive it.
/// </summary>
public sealed unsafe class IrqFd : IDisposable
{
    private readonly FileDescriptor _vm;
    private readonly EventFd _event;
    private readonly uint _gsi;
    private int _disposed;

    internal IrqFd(FileDescriptor vm, uint gsi)
    {
        _vm = vm;
        _gsi = gsi;
        _event = new EventFd(nonBlocking: true);
        var irqfd = new kvm_irqfd { fd = (uint)_event.Handle.DangerousGetFd(), gsi = gsi };
        int rc = Libc.ioctl(_vm, Kvm.KVM_IRQFD, &irqfd);
        if (rc < 0)
        {
            Errno errno = LastErrno.Get();
            _event.Dispose();
            throw new KvmException("KVM_IRQFD", errno, $"cannot attach an irqfd to GSI {gsi}");
        }
    }

    public uint Gsi => _gsi;

    /// <summary>Injects one interrupt (the kernel coalesces signals that arrive before it runs the injection).</summary>
    public void Trigger() => _event.Signal();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        var irqfd = new kvm_irqfd { fd = (uint)_event.Handle.DangerousGetFd(), gsi = _gsi, flags = Kvm.KVM_IRQFD_FLAG_DEASSIGN };
        Libc.ioctl(_vm, Kvm.KVM_IRQFD, &irqfd);
        _event.Dispose();
    }
}
