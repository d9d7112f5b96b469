using KvmSharp;
using MiniVmm.Devices.Virtio;

namespace MiniVmm.Machine.Devices;

/// <summary>A virtio doorbell backed by a KVM ioeventfd on the device's QueueNotify register: a guest kick wakes the
/// device worker inside the kernel, without a vCPU exit to user space. Owns the ioeventfd.</summary>
public sealed class IoEventFdDoorbell(IoEventFd ioeventfd) : IVirtioDoorbell, IDisposable
{
    public void Wait() => ioeventfd.Wait();

    public void Ring() => ioeventfd.Wake();

    public void Dispose() => ioeventfd.Dispose();
}
