using System.Collections.Concurrent;
using KvmSharp;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Runtime;

namespace MiniVmm.Core.Tests.Runtime;

/// <summary>
/// The main loop without a VM: bottom halves, timers, fd handlers, stop and failure. Loops run on a thread of their
/// own; the join bound only turns a hang into a failure, it measures nothing.
/// </summary>
public sealed class MainLoopTests : IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(20);
    private readonly MainLoop _loop = new(NullLogger.Instance);

    public void Dispose() => _loop.Dispose();

    private Thread StartLoop()
    {
        var thread = new Thread(_loop.Run) { Name = "test-main-loop", IsBackground = true };
        thread.Start();
        return thread;
    }

    private static void Ended(Thread thread) => thread.Join(HangGuard).Should().BeTrue("the loop must return after Stop");

    [Fact]
    public void Bottom_halves_run_on_the_loop_thread_in_order_including_ones_posted_by_bottom_halves()
    {
        var seen = new ConcurrentQueue<(string Name, bool OnLoop)>();
        _loop.IsLoopThread.Should().BeFalse();
        var thread = StartLoop();
        _loop.Post(() => seen.Enqueue(("a", _loop.IsLoopThread)));
        _loop.Post(() =>
        {
            seen.Enqueue(("b", _loop.IsLoopThread));
            _loop.Post(() => { seen.Enqueue(("c", _loop.IsLoopThread)); _loop.Stop(); });
        });
        Ended(thread);
        seen.Should().Equal(("a", true), ("b", true), ("c", true));
    }

    [Fact]
    public void Work_posted_from_many_threads_all_runs()
    {
        int count = 0;
        var thread = StartLoop();
        var posters = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < 1000; i++) _loop.Post(() => count++); // only the loop thread touches count
        })).ToList();
        posters.ForEach(t => t.Start());
        posters.ForEach(t => t.Join());
        _loop.Post(_loop.Stop);
        Ended(thread);
        count.Should().Be(4000);
    }

    [Fact]
    public void Timers_fire_in_due_order_and_a_cancelled_one_never_fires()
    {
        var fired = new List<string>();
        _loop.Schedule(TimeSpan.FromMilliseconds(60), () => { fired.Add("third"); _loop.Stop(); });
        _loop.Schedule(TimeSpan.FromMilliseconds(1), () => fired.Add("first"));
        var cancelled = _loop.Schedule(TimeSpan.FromMilliseconds(30), () => fired.Add("cancelled"));
        _loop.Schedule(TimeSpan.FromMilliseconds(40), () => fired.Add("second"));
        cancelled.Cancel();
        cancelled.Cancelled.Should().BeTrue();
        Ended(StartLoop());
        fired.Should().Equal("first", "second", "third");
    }

    [Fact]
    public void A_timer_scheduled_from_a_bottom_half_fires_even_when_nothing_else_wakes_the_loop()
    {
        bool fired = false;
        var thread = StartLoop();
        _loop.Post(() => _loop.Schedule(TimeSpan.FromMilliseconds(20), () => { fired = true; _loop.Stop(); }));
        Ended(thread);
        fired.Should().BeTrue();
    }

    [Fact]
    public void A_zero_delay_timer_fires()
    {
        bool fired = false;
        _loop.Schedule(TimeSpan.Zero, () => { fired = true; _loop.Stop(); });
        Ended(StartLoop());
        fired.Should().BeTrue();
    }

    [Fact]
    public void Stop_from_another_thread_wakes_an_idle_loop()
    {
        var thread = StartLoop();
        var started = new ManualResetEventSlim();
        _loop.Post(started.Set);
        started.Wait(HangGuard).Should().BeTrue();
        _loop.Stop();
        Ended(thread);
        _loop.Failure.Should().BeNull();
    }

    [Fact]
    public void Work_posted_before_a_stop_still_runs()
    {
        bool ran = false;
        _loop.Post(() => ran = true);
        _loop.Stop();
        Ended(StartLoop());
        ran.Should().BeTrue();
    }

    [Fact]
    public void A_throwing_handler_ends_the_loop_with_its_exception_and_later_work_does_not_run()
    {
        bool later = false;
        var boom = new InvalidOperationException("boom");
        _loop.Post(() => throw boom);
        _loop.Post(() => later = true);
        Ended(StartLoop());
        _loop.Failure.Should().BeSameAs(boom);
        later.Should().BeFalse();
    }

    [Fact]
    public void A_throwing_timer_ends_the_loop_too()
    {
        _loop.Schedule(TimeSpan.Zero, () => throw new FormatException("bad timer"));
        Ended(StartLoop());
        _loop.Failure.Should().BeOfType<FormatException>();
    }

    [Fact]
    public void A_readable_fd_runs_its_handler_with_the_event_bits_until_removed()
    {
        using var fd = new EventFd();
        var events = new ConcurrentQueue<EpollEvents>();
        ulong token = 0;
        token = _loop.AddFd(fd, EpollEvents.Readable, bits =>
        {
            events.Enqueue(bits);
            fd.Drain().Should().Be(3);
            _loop.RemoveFd(fd, token);
            fd.Signal(); // readable again, but no longer watched
            _loop.Schedule(TimeSpan.FromMilliseconds(20), _loop.Stop);
        });
        var thread = StartLoop();
        fd.Signal(3);
        Ended(thread);
        events.Should().Equal(EpollEvents.Readable);
    }

    [Fact]
    public void Posting_or_stopping_after_the_loop_ended_is_harmless()
    {
        _loop.Stop();
        Ended(StartLoop());
        bool ran = false;
        _loop.Invoking(l => l.Post(() => ran = true)).Should().NotThrow();
        _loop.Invoking(l => l.Stop()).Should().NotThrow();
        ran.Should().BeFalse("nothing runs bottom halves once the loop has returned");
    }

    [Fact]
    public void Posting_or_stopping_after_dispose_is_harmless()
    {
        // A signal handler, a snapshot completion or a device may still post while the VM is being torn down.
        _loop.Dispose();
        _loop.Invoking(l => l.Post(() => { })).Should().NotThrow();
        _loop.Invoking(l => l.Stop()).Should().NotThrow();
        _loop.Invoking(l => l.Dispose()).Should().NotThrow();
    }

    [Fact]
    public void Posting_while_another_thread_disposes_never_throws()
    {
        var errors = new ConcurrentQueue<Exception>();
        using var go = new ManualResetEventSlim();
        var poster = new Thread(() =>
        {
            go.Wait();
            for (int i = 0; i < 20000; i++)
            {
                try { _loop.Post(() => { }); }
                catch (Exception e) { errors.Enqueue(e); }
            }
        });
        poster.Start();
        go.Set();
        Thread.Yield();
        _loop.Dispose();
        poster.Join();
        errors.Should().BeEmpty();
    }
}
