using System.Diagnostics;

namespace MiniVmm.Snapshot.Engines;

/// <summary>Keeps a copy loop under a bandwidth cap (bytes/s; 0 = unlimited) by sleeping when it runs ahead.</summary>
public sealed class ScanThrottle(long bytesPerSecond)
{
    private readonly long _start = Stopwatch.GetTimestamp();
    private long _bytes;

    public void Account(long bytes, CancellationToken cancel)
    {
        if (bytesPerSecond <= 0) return;
        _bytes += bytes;
        double due = (double)_bytes / bytesPerSecond;
        double elapsed = Stopwatch.GetElapsedTime(_start).TotalSeconds;
        if (due > elapsed) cancel.WaitHandle.WaitOne(TimeSpan.FromSeconds(due - elapsed));
    }
}
