using KvmSharp;
using MiniVmm.Core.Bus;

namespace MiniVmm.Machine.Devices;

/// <summary>
/// A virtio interrupt through a KVM irqfd into the in-kernel IOAPIC: each raise is one edge, sent from whatever thread
/// completes the request (no KVM_IRQ_LINE ioctl, no main-loop hop). Lowering is a no-op: the driver's InterruptACK
/// clears the device's status and the pin was only pulsed. Owns the irqfd.
/// </summary>
public sealed class IrqFdInterruptLine(IrqFd irqfd) : IInterruptLine, IDisposable
{
    public void SetLevel(bool asserted)
    {
        if (asserted) irqfd.Trigger();
    }

    public void Dispose() => irqfd.Dispose();
}
