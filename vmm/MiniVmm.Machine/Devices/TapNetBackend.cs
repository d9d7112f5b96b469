using KvmSharp;
using KvmSharp.Abi;
using MiniVmm.Devices.Virtio.Net;

namespace MiniVmm.Machine.Devices;

/// <summary>
/// virtio-net's backend on a host tap. Owns the <see cref="TapDevice"/> and, only when asked to be watched (no
/// doorbell of the device's own watches the tap), an epoll that watches it edge-triggered (one wake-up per arrival, not
/// one per poll while frames wait for guest buffers) and an eventfd that ends the wait. Tap errors are sorted by
/// <see cref="TapErrors"/>: a transient one costs one frame, a dead tap throws <see cref="NetBackendDeadException"/>.
/// </summary>
public sealed class TapNetBackend : INetBackend
{
    private const ulong TapToken = 1, StopToken = 2;
    private readonly TapDevice _tap;
    private readonly Epoll? _epoll;
    private readonly EventFd? _stop;
    private volatile bool _closed;

    /// <summary>Takes ownership of <paramref name="tap"/> (disposed here also when the constructor fails).</summary>
    /// <param name="watch">Create what <see cref="WaitReadable"/> needs (false: the device's doorbell watches the
    /// tap's fd itself, and <see cref="WaitReadable"/> must not be called).</param>
    public TapNetBackend(TapDevice tap, bool watch)
    {
        _tap = tap;
        if (!watch) return;
        // Created in order, disposed in reverse of what exists so far.
        try
        {
            _epoll = new Epoll();
            _stop = new EventFd();
            _epoll.Add(tap, EpollEvents.Readable | EpollEvents.EdgeTriggered, TapToken);
            _epoll.Add(_stop, EpollEvents.Readable, StopToken);
        }
        catch
        {
            _stop?.Dispose();
            _epoll?.Dispose();
            tap.Dispose();
            throw;
        }
    }

    public string TapName => _tap.Name;
    public bool SupportsGuestOffloads => _tap.SupportsGuestOffloads;
    /// <summary>Whether this backend made the epoll and eventfd <see cref="WaitReadable"/> uses.</summary>
    public bool Watchable => _epoll is not null;

    public void SetGuestOffloads(bool csum, bool tso4, bool tso6) =>
        _tap.SetOffload((csum ? TapOffloads.Checksum : 0) | (tso4 ? TapOffloads.Tso4 : 0) | (tso6 ? TapOffloads.Tso6 : 0));

    public int TryRead(Span<byte> buffer)
    {
        try { return _tap.Read(buffer); }
        catch (LinuxException e) when (TapErrors.Classify(e.Errno) != TapFailure.Dead) { return -1; }
        catch (LinuxException e) { throw Dead(e); }
    }

    public bool TryWrite(ReadOnlySpan<byte> frame)
    {
        try { return _tap.Write(frame); }
        catch (LinuxException e) when (TapErrors.Classify(e.Errno) == TapFailure.Transient) { return false; }
        catch (LinuxException e) when (TapErrors.Classify(e.Errno) == TapFailure.Dead) { throw Dead(e); }
    }

    public bool WaitReadable()
    {
        if (_epoll is null) throw new InvalidOperationException($"internal error: tap '{TapName}' was opened for a doorbell that watches it");
        Span<EpollEvent> events = stackalloc EpollEvent[2];
        while (!_closed)
        {
            int n;
            try { n = _epoll.Wait(events, -1); }
            catch (LinuxException e) { throw Dead(e); }
            for (int i = 0; i < n; i++)
                if (events[i].Token == StopToken) return false;
            if (n > 0) return !_closed;
        }
        return false;
    }

    public void Close()
    {
        _closed = true;
        _stop?.Signal();
    }

    private NetBackendDeadException Dead(LinuxException e) => new($"tap '{TapName}' failed for good: {e.Message}", e);

    public void Dispose()
    {
        _stop?.Dispose();
        _epoll?.Dispose();
        _tap.Dispose();
    }
}
