using KvmSharp;
using KvmSharp.Interop;
using MiniVmm.Devices.Virtio.Net;

namespace MiniVmm.Machine.Devices;

/// <summary>
/// virtio-net's backend on a host tap: owns the <see cref="TapDevice"/>, an epoll that watches it edge-triggered
/// (one wake-up per arrival, not one per poll while frames wait for guest buffers) and an eventfd that ends the wait.
/// </summary>
public sealed class TapNetBackend : INetBackend
{
    private const ulong TapToken = 1, StopToken = 2;
    private readonly TapDevice _tap;
    private readonly Epoll _epoll = new();
    private readonly EventFd _stop = new();
    private volatile bool _closed;

    /// <summary>Takes ownership of <paramref name="tap"/> (disposed here also when the constructor fails).</summary>
    public TapNetBackend(TapDevice tap)
    {
        _tap = tap;
        try
        {
            _epoll.Add(tap.Handle, Libc.EPOLLIN | Libc.EPOLLET, TapToken);
            _epoll.Add(_stop.Handle, Libc.EPOLLIN, StopToken);
        }
        catch
        {
            _epoll.Dispose();
            _stop.Dispose();
            tap.Dispose();
            throw;
        }
    }

    public string TapName => _tap.Name;
    /// <summary>The tap's fd, for a device worker that waits on it itself (then <see cref="WaitReadable"/> is unused).</summary>
    public System.Runtime.InteropServices.SafeHandle ReadinessHandle => _tap.Handle;
    public bool SupportsGuestOffloads => _tap.SupportsGuestOffloads;

    public void SetGuestOffloads(bool csum, bool tso4, bool tso6) =>
        _tap.SetOffload((csum ? Tun.TUN_F_CSUM : 0) | (tso4 ? Tun.TUN_F_TSO4 : 0) | (tso6 ? Tun.TUN_F_TSO6 : 0));

    public int TryRead(Span<byte> buffer) => _tap.Read(buffer);

    public bool TryWrite(ReadOnlySpan<byte> frame) => _tap.Write(frame);

    public bool WaitReadable()
    {
        Span<epoll_event> events = stackalloc epoll_event[2];
        while (!_closed)
        {
            int n = _epoll.Wait(events, -1);
            for (int i = 0; i < n; i++)
                if (events[i].data == StopToken) return false;
            if (n > 0) return !_closed;
        }
        return false;
    }

    public void Close()
    {
        _closed = true;
        _stop.Signal();
    }

    public void Dispose()
    {
        _epoll.Dispose();
        _stop.Dispose();
        _tap.Dispose();
    }
}
