namespace MiniVmm.Devices.Virtio;

/// <summary>
/// How a device worker learns that the driver kicked a queue. The composition root may back it with a KVM ioeventfd
/// (guest writes to QueueNotify never leave the kernel); <see cref="ManagedDoorbell"/> serves plain MMIO exits and
/// tests. Rings coalesce: several rings before a wait wake it once.
/// </summary>
public interface IVirtioDoorbell
{
    /// <summary>Blocks until rung at least once since the last wait.</summary>
    void Wait();

    /// <summary>Wakes the waiter (from any thread).</summary>
    void Ring();
}

/// <summary>An in-process doorbell (an auto-reset event).</summary>
public sealed class ManagedDoorbell : IVirtioDoorbell, IDisposable
{
    private readonly AutoResetEvent _event = new(false);

    public void Wait() => _event.WaitOne();

    public void Ring() => _event.Set();

    public void Dispose() => _event.Dispose();
}
