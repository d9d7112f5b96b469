using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio.Queue;

namespace MiniVmm.Devices.Virtio;

/// <summary>
/// A virtio device behind any transport. Requests are served off the vCPU threads by one worker thread per device,
/// woken by its <see cref="IVirtioDoorbell"/>. A request runs under the device's gate, so a reset or a snapshot freeze
/// (which take the gate) waits for the request in flight and nothing touches guest RAM afterwards.
/// </summary>
public abstract class VirtioDevice : IDisposable
{
    /// <summary>Interrupt at least every this many completions while a queue keeps the worker busy.</summary>
    private const int InterruptBatch = 32;

    /// <summary>The most chains one queue is served in a row before the worker turns to the next queue: a queue the
    /// host keeps busy (network receive under a flood) cannot starve the others (transmit).</summary>
    public const int QueueBudget = 64;

    private readonly Lock _gate = new();
    private readonly IVirtioDoorbell _doorbell;
    private readonly IDisposable? _ownedDoorbell;
    private Thread? _worker;
    private volatile bool _disposed;
    private IVirtioDeviceHost? _host;
    private SplitQueue?[] _queues = [];
    private bool _active;
    private bool _paused;

    /// <param name="startPaused">Take no requests until <see cref="Resume"/> (a VM being built or restored: guest RAM
    /// may not be loaded yet).</param>
    protected VirtioDevice(IVirtioDoorbell? doorbell, bool startPaused = false)
    {
        _paused = startPaused;
        if (doorbell is null)
        {
            var managed = new ManagedDoorbell();
            _ownedDoorbell = managed;
            doorbell = managed;
        }
        _doorbell = doorbell;
    }

    public abstract uint DeviceId { get; }
    /// <summary>A short name for logs and thread names ("virtio-blk0").</summary>
    public abstract string Name { get; }
    /// <summary>Device-specific feature bits; the transport adds <see cref="VirtioFeatures.Common"/>.</summary>
    protected abstract ulong DeviceFeatures { get; }
    public abstract int QueueCount { get; }
    public virtual ushort MaxQueueSize => 256;
    /// <summary>Every feature bit the device offers.</summary>
    public ulong OfferedFeatures => DeviceFeatures | VirtioFeatures.Common;
    /// <summary>The features the driver accepted (valid while the device is live).</summary>
    public ulong AckedFeatures { get; private set; }

    public abstract void ReadConfig(uint offset, Span<byte> data);

    /// <summary>The device's config space as the guest sees it, recorded in snapshots: a restore refuses a device whose
    /// config differs (a drive image that changed size), since the guest driver has cached it.</summary>
    public virtual byte[] ConfigSnapshot() => [];
    public virtual void WriteConfig(uint offset, ReadOnlySpan<byte> data) { }

    /// <summary>Serves one chain taken from queue <paramref name="queueIndex"/>; returns the bytes written into it.
    /// Bad requests are answered in the device's own protocol (a status byte); a <see cref="VirtqueueException"/>
    /// means the chain itself is unusable.</summary>
    protected abstract uint Handle(int queueIndex, DescriptorChain chain, GuestMemory memory);

    /// <summary>Device-specific state cleared by a reset (called under the gate).</summary>
    protected virtual void OnReset() { }

    /// <summary>The driver went live with <paramref name="ackedFeatures"/> (DRIVER_OK, or a restore of a live device;
    /// called under the gate before any request).</summary>
    protected virtual void OnActivate(ulong ackedFeatures) { }

    /// <summary>Whether queue <paramref name="queueIndex"/> should be served now (called under the gate before each
    /// chain is taken). A device whose requests come from the host side (network receive) says no while it has nothing
    /// to put into the driver's buffers, so the buffers stay available until it has.</summary>
    protected virtual bool HasWork(int queueIndex, SplitQueue queue) => true;

    /// <summary>Queues the driver must have made ready before DRIVER_OK.</summary>
    public virtual bool RequiresQueue(int index) => true;

    public bool IsActive { get { lock (_gate) return _active; } }

    /// <summary>The transport calls this at DRIVER_OK with the queues the driver made ready.</summary>
    public void Activate(IVirtioDeviceHost host, SplitQueue?[] queues, ulong ackedFeatures)
    {
        lock (_gate)
        {
            _host = host;
            _queues = queues;
            AckedFeatures = ackedFeatures;
            OnActivate(ackedFeatures);
            _active = true;
            if (_worker is null && !_disposed)
            {
                _worker = new Thread(WorkerLoop) { IsBackground = true, Name = Name };
                _worker.Start();
            }
        }
        _doorbell.Ring(); // the driver may have queued requests before DRIVER_OK
    }

    /// <summary>Device reset: waits for the request in flight, then forgets the queues.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _active = false;
            _queues = [];
            _host = null;
            AckedFeatures = 0;
            OnReset();
        }
    }

    /// <summary>Queue notification from the driver (QueueNotify written outside an ioeventfd).</summary>
    public void Notify(int queueIndex) => _doorbell.Ring();

    /// <summary>
    /// Snapshot freeze: stop taking requests and wait (at most <paramref name="timeout"/>) for the one in flight.
    /// False when it did not finish in time (the device is then still marked paused and will not start another).
    /// </summary>
    public bool Quiesce(TimeSpan timeout)
    {
        if (!_gate.TryEnter(timeout))
        {
            Volatile.Write(ref _paused, true);
            return false;
        }
        try { _paused = true; }
        finally { _gate.Exit(); }
        return true;
    }

    public void Resume()
    {
        lock (_gate) _paused = false;
        _doorbell.Ring();
    }

    /// <summary>The queues of a live device (for saving its state; call while quiesced).</summary>
    public IReadOnlyList<SplitQueue?> LiveQueues { get { lock (_gate) return _queues; } }

    private void WorkerLoop()
    {
        try
        {
            while (true)
            {
                _doorbell.Wait();
                // Round-robin: each queue gets at most a budget per round, rounds go on while one still has work.
                bool more = true;
                while (more)
                {
                    if (_disposed) return;
                    more = false;
                    for (int q = 0; q < QueueCount; q++)
                        more |= Drain(q, QueueBudget);
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // Only after a Dispose that gave up waiting for a stuck request: the doorbell is gone, so is the device.
        }
    }

    /// <summary>Serves up to <paramref name="budget"/> chains of one queue; true when it stopped with chains left.</summary>
    private bool Drain(int queueIndex, int budget)
    {
        int sinceSignal = 0;
        for (int served = 0; ; served++)
        {
            lock (_gate)
            {
                if (!_active || _paused || _disposed || _host is not { } host) return false;
                if (queueIndex >= _queues.Length || _queues[queueIndex] is not { } queue) return false;
                try
                {
                    bool overBudget = served == budget;
                    if (overBudget || !HasWork(queueIndex, queue) || !queue.TryPop(out var chain))
                    {
                        if (sinceSignal > 0 && queue.NeedsInterrupt()) host.SignalUsedBuffers();
                        return overBudget;
                    }
                    uint written = Handle(queueIndex, chain, host.Memory);
                    queue.AddUsed(chain.Head, written);
                    if (++sinceSignal >= InterruptBatch)
                    {
                        sinceSignal = 0;
                        if (queue.NeedsInterrupt()) host.SignalUsedBuffers();
                    }
                }
                catch (Exception e) when (e is VirtqueueException or GuestMemoryException)
                {
                    _active = false;
                    host.DeviceError($"queue {queueIndex}: {e.Message}");
                    return false;
                }
                catch (Exception e)
                {
                    // A host-side failure (not the guest's): the device stops rather than take the process down.
                    _active = false;
                    host.DeviceError($"queue {queueIndex}: internal error: {e.GetType().Name}: {e.Message}");
                    return false;
                }
            }
        }
    }

    protected virtual void Dispose(bool disposing) { }

    /// <summary>
    /// False while the worker thread is still alive (after a <see cref="Dispose"/> that gave up waiting for a request
    /// stuck in host I/O): it may still write guest RAM, so the owner must not unmap it.
    /// </summary>
    public bool HasStopped => _worker is not { IsAlive: true };

    public void Dispose()
    {
        _disposed = true;
        _doorbell.Ring();
        if (_worker is { } worker && worker != Thread.CurrentThread && !worker.Join(TimeSpan.FromSeconds(5)))
        {
            // A request is stuck in host I/O; keep the doorbell and resources alive rather than free them under it.
            return;
        }
        lock (_gate) { _active = false; }
        Dispose(true);
        _ownedDoorbell?.Dispose();
        GC.SuppressFinalize(this);
    }
}
