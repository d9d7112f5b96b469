using System.Diagnostics;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// Fault-stall samples (Stopwatch ticks) in a buffer sized before the snapshot starts, so recording on the fault path
/// never allocates. Past capacity, samples are kept by reservoir sampling, which keeps the percentiles unbiased. With
/// <c>parts</c>, each sample also keeps how its time split into phases, so the slowest samples can be explained.
/// </summary>
public sealed class LatencyRecorder(int capacity = 1 << 18, int parts = 0)
{
    private readonly long[] _samples = new long[capacity];
    private readonly long[] _parts = GC.AllocateUninitializedArray<long>(capacity * parts); // only written slots are read
    private long _count;
    private ulong _rng = 0x9E3779B97F4A7C15;
    private long _max;

    public long Count => _count;

    /// <summary>Single writer (the fault thread).</summary>
    public void Record(long ticks) => Record(ticks, []);

    /// <summary>Single writer; <paramref name="partTicks"/> holds one value per phase (as many as the recorder has parts).</summary>
    public void Record(long ticks, ReadOnlySpan<long> partTicks)
    {
        if (partTicks.Length != parts)
            throw new ArgumentException($"{partTicks.Length} phases given, the recorder keeps {parts}", nameof(partTicks));
        if (ticks > _max) _max = ticks;
        long n = _count++;
        long slot = n;
        if (n >= _samples.Length)
        {
            _rng ^= _rng << 13; _rng ^= _rng >> 7; _rng ^= _rng << 17;
            slot = (long)(_rng % (ulong)(n + 1));
            if (slot >= _samples.Length) return;
        }
        _samples[slot] = ticks;
        partTicks.CopyTo(_parts.AsSpan((int)slot * parts, parts));
    }

    public TimeSpan Percentile(double p)
    {
        int n = (int)Math.Min(_count, _samples.Length);
        if (n == 0) return TimeSpan.Zero;
        var copy = _samples.AsSpan(0, n).ToArray();
        Array.Sort(copy);
        return Stopwatch.GetElapsedTime(0, copy[RankIndex(p, n)]);
    }

    private static int RankIndex(double p, int n) => Math.Clamp((int)Math.Ceiling(p / 100.0 * n) - 1, 0, n - 1);

    /// <summary>
    /// The mean of each phase over the slowest (100 − <paramref name="p"/>) % of the samples (at least one): where the
    /// slowest samples spent their time. Empty without parts or samples.
    /// </summary>
    public TimeSpan[] SlowestPhases(double p)
    {
        int n = (int)Math.Min(_count, _samples.Length);
        if (n == 0 || parts == 0) return [];
        var order = Enumerable.Range(0, n).ToArray();
        var keys = _samples.AsSpan(0, n).ToArray();
        Array.Sort(keys, order);
        int from = n - Math.Max(1, (int)Math.Ceiling((100 - p) / 100.0 * n));
        var sums = new double[parts];
        for (int i = from; i < n; i++)
            for (int k = 0; k < parts; k++) sums[k] += _parts[order[i] * parts + k];
        return sums.Select(s => Stopwatch.GetElapsedTime(0, (long)(s / (n - from)))).ToArray();
    }

    public TimeSpan Max => Stopwatch.GetElapsedTime(0, _max);

    /// <summary>All kept samples in microseconds (for experiments' CDFs).</summary>
    public double[] SamplesMicroseconds()
    {
        int n = (int)Math.Min(_count, _samples.Length);
        return _samples.AsSpan(0, n).ToArray().Select(t => Stopwatch.GetElapsedTime(0, t).TotalMicroseconds).ToArray();
    }
}
