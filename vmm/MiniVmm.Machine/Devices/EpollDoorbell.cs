using System.Runtime.InteropServices;
using KvmSharp;
using KvmSharp.Abi;
using MiniVmm.Devices.Virtio;

namespace MiniVmm.Machine.Devices;

/// <summary>
/// A doorbell that rings on a guest kick (the ioeventfd) and also when another fd becomes readable (a tap, watched
/// edge-triggered): the device worker waits on both in one epoll, so a frame from the host wakes the thread that
/// serves it directly instead of through a watcher thread (one cross-thread wake-up less per frame). Owns the
/// ioeventfd and the epoll, not the watched fd.
/// </summary>
public sealed class EpollDoorbell : IVirtioDoorbell, IDisposable
{
    private const ulong KickToken = 1, WatchedToken = 2;
    private readonly IoEventFd _ioeventfd;
    private readonly Epoll _epoll = new();

    public EpollDoorbell(IoEventFd ioeventfd, IPollable watched)
    {
        _ioeventfd = ioeventfd;
        try
        {
            _epoll.Add(ioeventfd, EpollEvents.Readable, KickToken);
            _epoll.Add(watched, EpollEvents.Readable | EpollEvents.EdgeTriggered, WatchedToken);
        }
        catch
        {
            _epoll.Dispose();
            throw;
        }
    }

    public void Wait()
    {
        Span<EpollEvent> events = stackalloc EpollEvent[2];
        while (true)
        {
            int n = _epoll.Wait(events, -1);
            for (int i = 0; i < n; i++)
                if (events[i].Token == KickToken) _ioeventfd.Wait(); // readable: the read does not block
            if (n > 0) return;
        }
    }

    public void Ring() => _ioeventfd.Wake();

    public void Dispose()
    {
        _epoll.Dispose();
        _ioeventfd.Dispose();
    }
}
