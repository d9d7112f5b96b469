using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio.Queue;
using P = MiniVmm.Devices.Virtio.Net.VirtioNetProtocol;

namespace MiniVmm.Devices.Virtio.Net;

/// <summary>
/// virtio-net (virtio 1.2 §5.1) on an <see cref="INetBackend"/>: receive queue 0, transmit queue 1, no control queue.
/// Both queues are served by the device's worker, woken by its doorbell also when the backend has frames (the VM's doorbell
/// watches the tap itself; otherwise a watcher thread rings it). A frame is
/// read from the backend only when the driver has a receive buffer available, so a guest without buffers leaves the
/// frames queued in the host (the tap's queue, which counts its own overflow) and the worker sleeps until the
/// driver's notify or the next arrival. The virtio_net_hdr (12 bytes with VERSION_1) is the backend's vnet header, so
/// checksum and TSO offloads pass through unchanged once <see cref="TransmitHeader"/> found them negotiated and inside
/// the frame; offered are what the backend supports.
/// <para>A frame the backend cannot take or give now is dropped and counted; a backend that died
/// (<see cref="NetBackendDeadException"/>) stops the device with DEVICE_NEEDS_RESET, logged once.</para>
/// </summary>
public sealed class VirtioNet : VirtioDevice
{
    private readonly INetBackend _backend;
    private readonly byte[] _config = new byte[P.ConfigSize];
    private readonly byte[] _frame = new byte[P.HeaderSize + P.MaxFrameBytes];   // receive: read from the backend
    private readonly byte[] _txFrame = new byte[P.HeaderSize + P.MaxFrameBytes]; // transmit: gathered from the chain
    private readonly RateLimitedLog _log;
    private readonly ILogger _logger;
    private readonly string _name;
    private readonly Thread? _watcher;
    private int _pendingLength = -1;
    /// <summary>Why the watcher could no longer wait on the backend (null: it can): the worker stops the device.</summary>
    private volatile NetBackendDeadException? _watchFailure;
    private long _rxFrames, _rxBytes, _txFrames, _txBytes, _rxTooBig, _txMalformed, _txBadHeader, _txDropped;

    /// <param name="watchBackend">Start a thread that rings the doorbell when the backend has frames; false when the
    /// doorbell itself wakes on the backend (the VM's epoll doorbell on the tap).</param>
    public VirtioNet(INetBackend backend, MacAddress mac, string name = "virtio-net", IVirtioDoorbell? doorbell = null,
        ILogger? logger = null, bool startPaused = false, bool watchBackend = true)
        : base(doorbell, startPaused)
    {
        // Owns the backend from here (disposed also when the watcher cannot start).
        _backend = backend;
        _name = name;
        Mac = mac;
        _logger = logger ?? NullLogger.Instance;
        _log = new RateLimitedLog(_logger);
        mac.ToBytes().CopyTo(_config, P.ConfigMac);
        BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(P.ConfigStatus), P.StatusLinkUp);
        if (watchBackend)
        {
            _watcher = new Thread(WatchBackend) { IsBackground = true, Name = name + "-rx" };
            try { _watcher.Start(); }
            catch
            {
                backend.Dispose();
                throw;
            }
        }
    }

    public MacAddress Mac { get; }
    public override uint DeviceId => VirtioDeviceId.Network;
    public override string Name => _name;
    public override int QueueCount => 2;

    protected override ulong DeviceFeatures =>
        P.FeatureMac | P.FeatureStatus | P.FeatureCsum | P.FeatureHostTso4 | P.FeatureHostTso6 |
        (_backend.SupportsGuestOffloads ? P.FeatureGuestCsum | P.FeatureGuestTso4 | P.FeatureGuestTso6 : 0);

    public NetCounters Counters => new(Interlocked.Read(ref _rxFrames), Interlocked.Read(ref _rxBytes),
        Interlocked.Read(ref _txFrames), Interlocked.Read(ref _txBytes), Interlocked.Read(ref _rxTooBig),
        Interlocked.Read(ref _txMalformed), Interlocked.Read(ref _txBadHeader), Interlocked.Read(ref _txDropped));

    public override byte[] ConfigSnapshot() => (byte[])_config.Clone();

    public override void ReadConfig(uint offset, Span<byte> data)
    {
        data.Clear();
        if (offset >= _config.Length) return;
        int n = Math.Min(data.Length, _config.Length - (int)offset);
        _config.AsSpan((int)offset, n).CopyTo(data);
    }

    protected override void OnActivate(ulong ackedFeatures)
    {
        try
        {
            _backend.SetGuestOffloads((ackedFeatures & P.FeatureGuestCsum) != 0, (ackedFeatures & P.FeatureGuestTso4) != 0, (ackedFeatures & P.FeatureGuestTso6) != 0);
        }
        catch (IOException e)
        {
            // The driver accepted only features the backend said it supports; if the host changed its mind, frames
            // still flow, just without receive offloads.
            _log.Warn(Name, $"cannot set the backend's receive offloads: {e.Message}");
        }
    }

    protected override void OnReset()
    {
        _pendingLength = -1;
        try { _backend.SetGuestOffloads(false, false, false); }
        catch (IOException e) { _log.Warn(Name, $"cannot clear the backend's receive offloads: {e.Message}"); }
    }

    /// <summary>Receive: serve the queue only while a frame is waiting and the driver has a buffer for it.</summary>
    protected override bool HasWork(int queueIndex, SplitQueue queue)
    {
        if (queueIndex != P.ReceiveQueue) return true;
        if (_watchFailure is { } failure) throw failure;
        if (queue.Pending() == 0) return false;
        if (_pendingLength < 0) _pendingLength = _backend.TryRead(_frame);
        return _pendingLength >= 0;
    }

    protected override uint Handle(int queueIndex, DescriptorChain chain, GuestMemory memory) => queueIndex switch
    {
        P.ReceiveQueue => Receive(chain, memory),
        P.TransmitQueue => Transmit(chain, memory),
        _ => throw new VirtqueueException($"queue {queueIndex} does not exist"),
    };

    private uint Receive(DescriptorChain chain, GuestMemory memory)
    {
        if (chain.ReadableCount > 0)
            throw new VirtqueueException($"receive chain at head {chain.Head} has {chain.ReadableCount} device-readable buffers");
        int length = _pendingLength;
        _pendingLength = -1;
        if (length < P.HeaderSize) return 0; // cannot come from a tap with a vnet header; nothing to deliver
        if ((ulong)length > chain.WritableBytes)
        {
            Interlocked.Increment(ref _rxTooBig);
            if (_log.TryTake(out long suppressed))
                _log.Write(Name, $"dropped a received frame of {length - P.HeaderSize} bytes: the driver's buffer holds {chain.WritableBytes} bytes with the header", suppressed);
            return 0;
        }
        var frame = _frame.AsSpan(0, length);
        if ((AckedFeatures & P.FeatureGuestCsum) == 0) frame[P.HeaderFlags] = 0; // no checksum hints the driver did not ask for
        BinaryPrimitives.WriteUInt16LittleEndian(frame[P.HeaderNumBuffers..], 1); // one chain per frame without MRG_RXBUF
        int written = ChainIo.Write(memory, chain, 0, frame);
        Interlocked.Increment(ref _rxFrames);
        Interlocked.Add(ref _rxBytes, length - P.HeaderSize);
        return (uint)written;
    }

    private uint Transmit(DescriptorChain chain, GuestMemory memory)
    {
        if (chain.WritableCount > 0)
            throw new VirtqueueException($"transmit chain at head {chain.Head} has {chain.WritableCount} device-writable buffers");
        ulong bytes = chain.ReadableBytes;
        if (bytes < P.HeaderSize + P.EthernetHeaderSize || bytes > (ulong)(P.HeaderSize + P.MaxFrameBytes))
        {
            Interlocked.Increment(ref _txMalformed);
            if (_log.TryTake(out long suppressed))
                _log.Write(Name, $"dropped a transmit chain of {bytes} bytes (a header and {P.EthernetHeaderSize}..{P.MaxFrameBytes} frame bytes expected)", suppressed);
            return 0;
        }
        var frame = _txFrame.AsSpan(0, (int)bytes);
        ChainIo.Read(memory, chain, 0, frame);
        if (TransmitHeader.Problem(frame, AckedFeatures) is { } problem)
        {
            Interlocked.Increment(ref _txBadHeader);
            if (_log.TryTake(out long suppressed)) _log.Write(Name, $"dropped a transmitted frame: {problem}", suppressed);
            return 0;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(frame[P.HeaderNumBuffers..], 0);
        bool sent;
        try { sent = _backend.TryWrite(frame); }
        catch (IOException e)
        {
            sent = false;
            if (_log.TryTake(out long suppressed)) _log.Write(Name, $"the backend refused a frame: {e.Message}", suppressed);
        }
        if (sent)
        {
            Interlocked.Increment(ref _txFrames);
            Interlocked.Add(ref _txBytes, (long)bytes - P.HeaderSize);
        }
        else
        {
            Interlocked.Increment(ref _txDropped);
        }
        return 0;
    }

    /// <summary>Wakes the worker whenever the backend may have frames (the worker reads them; this thread never
    /// touches guest RAM).</summary>
    private void WatchBackend()
    {
        try
        {
            while (_backend.WaitReadable())
                Notify(P.ReceiveQueue);
        }
        catch (Exception e)
        {
            // Never let this thread take the process down: the worker stops the device on its next receive.
            _watchFailure = e as NetBackendDeadException ?? new NetBackendDeadException($"cannot wait for the backend's frames: {e.Message}", e);
            Notify(P.ReceiveQueue);
        }
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        var c = Counters;
        _logger.LogInformation("{Device}: received {RxFrames} frames ({RxBytes} bytes), sent {TxFrames} ({TxBytes} bytes); dropped: {RxTooBig} received frames too big for the buffer, {TxMalformed} malformed transmit chains, {TxBadHeader} transmitted frames with a bad header and {TxDropped} unsendable ones",
            Name, c.RxFrames, c.RxBytes, c.TxFrames, c.TxBytes, c.RxTooBig, c.TxMalformed, c.TxBadHeader, c.TxDropped);
        _backend.Close();
        _watcher?.Join();
        _backend.Dispose();
    }
}
