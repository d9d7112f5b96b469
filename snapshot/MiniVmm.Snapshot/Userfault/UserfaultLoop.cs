using System.Diagnostics;
using KvmSharp;
using MiniVmm.Core.Memory;

namespace MiniVmm.Snapshot.Userfault;

/// <summary>
/// The fault loop shared by write tracking and lazy restore: waits in epoll on a userfaultfd and a stop eventfd, drains
/// the queued messages in arrival order and hands each page fault to a handler as (region, page) of guest memory. It
/// owns the epoll and the eventfd; the userfaultfd stays with its owner, which disposes it after the loop's thread has
/// returned from <see cref="Run"/>.
/// </summary>
internal sealed class UserfaultLoop : IDisposable
{
    /// <param name="readAt">when the batch holding this message was read (Stopwatch ticks): the start of its stall</param>
    public delegate void FaultHandler(int region, long page, long readAt);

    private const ulong FaultToken = 1, StopToken = 2;
    private readonly UserfaultFd _uffd;
    private readonly GuestMemory _memory;
    private readonly EventFd _stop;
    private readonly Epoll _epoll;
    private readonly UffdMessage[] _messages;
    private volatile bool _stopRequested;

    /// <param name="batch">messages read per read(2); allocated once, so the loop allocates nothing while serving</param>
    public UserfaultLoop(UserfaultFd uffd, GuestMemory memory, int batch = 64)
    {
        _uffd = uffd;
        _memory = memory;
        _messages = new UffdMessage[batch];
        _stop = new EventFd();
        Epoll? epoll = null;
        try
        {
            epoll = new Epoll();
            epoll.Add(uffd, EpollEvents.Readable, FaultToken);
            epoll.Add(_stop, EpollEvents.Readable, StopToken);
        }
        catch
        {
            epoll?.Dispose();
            _stop.Dispose();
            throw;
        }
        _epoll = epoll;
    }

    /// <summary>
    /// Serves faults on the calling thread until <see cref="Stop"/> (the messages queued by then are served first) or
    /// until <paramref name="finished"/> is true after a drain. Exceptions of the handler or the kernel propagate.
    /// </summary>
    public void Run(FaultHandler onFault, Func<bool> finished)
    {
        Span<EpollEvent> events = stackalloc EpollEvent[2];
        while (true)
        {
            // Read before draining: a stop requested during the drain gets one more drain before the loop returns.
            bool stopping = _stopRequested;
            int n;
            while ((n = _uffd.ReadMessages(_messages)) > 0)
            {
                long readAt = Stopwatch.GetTimestamp();
                for (int i = 0; i < n; i++)
                    if (_messages[i].IsPageFault && TryLocate(_messages[i], out int region, out long page))
                        onFault(region, page, readAt);
            }
            if (stopping || finished()) return;
            _epoll.Wait(events, 100); // the timeout lets `finished` be polled; a stop wakes it at once
        }
    }

    /// <summary>Asks <see cref="Run"/> to return after serving what is queued. Safe from any thread, also after Dispose.</summary>
    public void Stop()
    {
        _stopRequested = true;
        try { _stop.Signal(); }
        catch (ObjectDisposedException) { } // the loop is gone: nothing to wake
    }

    private bool TryLocate(in UffdMessage message, out int region, out long page)
    {
        var regions = _memory.Regions;
        for (region = 0; region < regions.Count; region++)
            if (regions[region].TryGetFaultPage(message, out page)) return true;
        page = 0;
        return false; // not guest RAM: nothing of ours to serve (cannot happen for a range we registered)
    }

    public void Dispose()
    {
        _epoll.Dispose();
        _stop.Dispose();
    }
}
