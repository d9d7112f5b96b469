using System.Diagnostics;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// Fault-stall samples (Stopwatch ticks) in a buffer sized before the snapshot starts, so recording on the fault path
/// never allocates. Past capacity, samples are kept by reservoir sampling, which keeps the percentiles unbiased.
/// </summary>
public sealed class LatencyRecorder(int capacity = 1 << 18)
{
    private readonly long[] _samples = new long[capacity];
    private long _count;
    private ulong _rng = 0x9E3779B97F4A7C15;
    private long _max;

    public long Count => _count;

    /// <summary>Single writer (the fault thread).</summary>
    public void Record(long ticks)
    {
        if (ticks > _max) _max = ticks;
        long n = _count++;
        if (n < _samples.Length) { _samples[n] = ticks; return; }
        _rng ^= _rng << 13; _rng ^= _rng >> 7; _rng ^= _rng << 17;
        long slot = (long)(_rng % (ulong)(n + 1));
        if (slot < _samples.Length) _samples[slot] = ticks;
    }

    public TimeSpan Percentile(double p)
    {
        int n = (int)Math.Min(_count, _samples.Length);
        if (n == 0) return TimeSpan.Zero;
        var copy = _samples.AsSpan(0, n).ToArray();
        Array.Sort(copy);
        int index = Math.Clamp((int)Math.Ceiling(p / 100.0 * n) - 1, 0, n - 1);
        return Stopwatch.GetElapsedTime(0, copy[index]);
    }

    public TimeSpan Max => Stopwatch.GetElapsedTime(0, _max);

    /// <summary>All kept samples in microseconds (for experiments' CDFs).</summary>
    public double[] SamplesMicroseconds()
    {
        int n = (int)Math.Min(_count, _samples.Length);
        return _samples.AsSpan(0, n).ToArray().Select(t => Stopwatch.GetElapsedTime(0, t).TotalMicroseconds).ToArray();
    }
}
