using System.Diagnostics;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// Keeps a copy loop under a bandwidth cap (bytes/s; 0 = unlimited) by sleeping when it runs ahead. It is fed the
/// bytes the loop itself has sent to the destination, not the bytes scanned: zero pages cost no I/O, so they do not
/// use up the budget. Bytes written by write-tracking's fault handler are not charged: they were never delayed, and
/// charging them made the scan sleep for seconds after the guest had already written everything out.
/// </summary>
public sealed class ScanThrottle(long bytesPerSecond)
{
    private readonly long _start = Stopwatch.GetTimestamp();

    public void WaitFor(long bytesWrittenSoFar, CancellationToken cancel)
    {
        if (bytesPerSecond <= 0) return;
        double due = (double)bytesWrittenSoFar / bytesPerSecond;
        double elapsed = Stopwatch.GetElapsedTime(_start).TotalSeconds;
        // WaitOne takes at most int.MaxValue ms (24.8 days); a tiny cap far behind would otherwise throw.
        if (due > elapsed) cancel.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(Math.Min((due - elapsed) * 1000, int.MaxValue)));
    }
}
