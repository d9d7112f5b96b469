using System.Collections.Concurrent;
using System.Diagnostics;
using KvmSharp;
using Microsoft.Extensions.Logging;

namespace MiniVmm.Core.Runtime;

/// <summary>
/// The VM's main loop: one thread waiting in epoll on registered fds, running timers and bottom-halves. It owns VM
/// state transitions; other threads hand it work with <see cref="Post"/> (a bottom-half: queued, then an eventfd wakes
/// the loop). A handler that throws is a VMM bug: the loop logs it and stops with <see cref="Failure"/> set, so the VM
/// shuts down cleanly instead of running on in an unknown state.
/// </summary>
public sealed class MainLoop : IDisposable
{
    private const ulong WakeToken = ulong.MaxValue;
    private readonly Epoll _epoll = new();
    private readonly EventFd _wake = new();
    private readonly ConcurrentQueue<Action> _bottomHalves = new();
    private readonly Dictionary<ulong, Action<EpollEvents>> _handlers = new();
    private readonly PriorityQueue<Timer, long> _timers = new();
    private readonly ILogger _log;
    private ulong _nextToken = 1;
    private volatile bool _stop;
    private volatile bool _disposed;
    private int _threadId = -1;

    public MainLoop(ILogger log)
    {
        _log = log;
        _epoll.Add(_wake, EpollEvents.Readable, WakeToken);
    }

    /// <summary>The exception that ended the loop, if one did.</summary>
    public Exception? Failure { get; private set; }

    public bool IsLoopThread => Environment.CurrentManagedThreadId == _threadId;

    /// <summary>
    /// Queues a bottom-half to run on the loop thread. Safe from any thread, also while or after the VM is torn down
    /// (a signal handler or a snapshot completion may still post then): after <see cref="Run"/> has returned the work
    /// is dropped, and after <see cref="Dispose"/> the call does nothing.
    /// </summary>
    public void Post(Action bottomHalf)
    {
        if (_disposed) return;
        _bottomHalves.Enqueue(bottomHalf);
        Wake();
    }

    /// <summary>Watches <paramref name="fd"/>; the handler gets the events that happened. Returns a token for removal.</summary>
    public ulong AddFd(IPollable fd, EpollEvents events, Action<EpollEvents> handler)
    {
        ulong token = _nextToken++;
        _handlers[token] = handler;
        _epoll.Add(fd, events, token);
        return token;
    }

    public void RemoveFd(IPollable fd, ulong token)
    {
        _handlers.Remove(token);
        _epoll.Remove(fd);
    }

    /// <summary>Runs <paramref name="callback"/> on the loop thread after <paramref name="delay"/>. Call on the loop thread or before Run.</summary>
    public Timer Schedule(TimeSpan delay, Action callback)
    {
        var timer = new Timer(callback);
        _timers.Enqueue(timer, Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency));
        return timer;
    }

    /// <summary>Asks the loop to return from <see cref="Run"/>. Safe from any thread.</summary>
    public void Stop()
    {
        _stop = true;
        Wake();
    }

    private void Wake()
    {
        try { _wake.Signal(); }
        catch (ObjectDisposedException) { } // disposed meanwhile: there is no loop left to wake
    }

    /// <summary>Runs the loop on the calling thread until <see cref="Stop"/>.</summary>
    public void Run()
    {
        _threadId = Environment.CurrentManagedThreadId;
        Span<EpollEvent> events = stackalloc EpollEvent[16];
        try
        {
            while (!_stop)
            {
                RunBottomHalves();
                if (_stop) break;
                int n = _epoll.Wait(events, NextTimeoutMs());
                for (int i = 0; i < n; i++)
                {
                    if (events[i].Token == WakeToken) { _wake.Drain(); continue; }
                    if (_handlers.TryGetValue(events[i].Token, out var handler)) handler(events[i].Events);
                }
                RunDueTimers();
            }
            RunBottomHalves();
        }
        catch (Exception e)
        {
            _log.LogCritical(e, "main loop handler failed; stopping the VM");
            Failure = e;
        }
    }

    private void RunBottomHalves()
    {
        while (_bottomHalves.TryDequeue(out var bh)) bh();
    }

    private void RunDueTimers()
    {
        long now = Stopwatch.GetTimestamp();
        while (_timers.TryPeek(out var timer, out long due) && due <= now)
        {
            _timers.Dequeue();
            if (!timer.Cancelled) timer.Callback();
        }
    }

    private int NextTimeoutMs()
    {
        while (_timers.TryPeek(out var t, out _) && t.Cancelled) _timers.Dequeue();
        if (!_timers.TryPeek(out _, out long due)) return -1;
        long ticks = due - Stopwatch.GetTimestamp();
        if (ticks <= 0) return 0;
        return (int)Math.Min(int.MaxValue, (ticks * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency);
    }

    public void Dispose()
    {
        _disposed = true;
        _epoll.Dispose();
        _wake.Dispose();
    }

    /// <summary>A scheduled callback; <see cref="Cancel"/> it on the loop thread.</summary>
    public sealed class Timer(Action callback)
    {
        internal Action Callback { get; } = callback;
        public bool Cancelled { get; private set; }
        public void Cancel() => Cancelled = true;
    }
}
