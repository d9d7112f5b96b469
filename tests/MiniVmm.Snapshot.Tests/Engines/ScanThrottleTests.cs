using System.Diagnostics;
using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>
/// The bandwidth cap. Waits that would last hours are bounded by a hang guard, so "does not wait" and "wakes on
/// cancel" are checked without measuring anything; the one lower bound is a minimum sleep, which load only lengthens.
/// </summary>
public sealed class ScanThrottleTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    private static Thread Run(Action action)
    {
        var thread = new Thread(() => action()) { IsBackground = true };
        thread.Start();
        return thread;
    }

    [Fact]
    public void Unlimited_never_waits() =>
        Run(() => new ScanThrottle(0).WaitFor(long.MaxValue / 2, CancellationToken.None)).Join(Guard).Should().BeTrue();

    [Fact]
    public void Being_behind_the_budget_does_not_wait() =>
        Run(() => new ScanThrottle(1).WaitFor(0, CancellationToken.None)).Join(Guard).Should().BeTrue();

    [Fact]
    public void Running_ahead_waits_until_cancelled()
    {
        var throttle = new ScanThrottle(1); // 1 byte/s: a GiB ahead would be 34 years
        using var cancel = new CancellationTokenSource();
        var wait = Run(() => throttle.WaitFor(1L << 30, cancel.Token));
        wait.Join(TimeSpan.FromMilliseconds(200)).Should().BeFalse("it is far ahead of its budget");
        cancel.Cancel();
        wait.Join(Guard).Should().BeTrue("cancel ends the wait");
    }

    [Fact]
    public void Running_ahead_sleeps_at_least_until_the_bytes_are_due()
    {
        var throttle = new ScanThrottle(10L << 20);
        var clock = Stopwatch.StartNew();
        throttle.WaitFor(3L << 20, CancellationToken.None); // due 0.3 s after the throttle was created
        clock.Elapsed.Should().BeGreaterThan(TimeSpan.FromMilliseconds(250));
    }
}
