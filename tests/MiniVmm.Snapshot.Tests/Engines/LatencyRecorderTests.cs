using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

public sealed class LatencyRecorderTests
{
    [Fact]
    public void The_slowest_phases_are_the_mean_phases_of_the_samples_at_or_above_the_percentile()
    {
        var recorder = new LatencyRecorder(capacity: 1000, parts: 2);
        // 99 fast samples spent in phase 0; one slow one (the top 1 %) spent mostly in phase 1.
        for (int i = 0; i < 99; i++) recorder.Record(100, [90, 10]);
        recorder.Record(10_000, [1_000, 9_000]);

        var slowest = recorder.SlowestPhases(99);

        slowest.Should().Equal(TimeSpan.FromTicks(TicksOf(1_000)), TimeSpan.FromTicks(TicksOf(9_000)));
        recorder.Percentile(99).Should().Be(TimeSpan.FromTicks(TicksOf(100)));
        recorder.Max.Should().Be(TimeSpan.FromTicks(TicksOf(10_000)));
    }

    [Fact]
    public void Past_capacity_a_sample_keeps_its_own_phases()
    {
        var recorder = new LatencyRecorder(capacity: 64, parts: 1);
        // Every sample's single phase equals its total, whichever slot reservoir sampling gives it.
        for (long i = 1; i <= 10_000; i++) recorder.Record(i, [i]);

        recorder.Count.Should().Be(10_000);
        var kept = recorder.SamplesMicroseconds().OrderDescending().Take(32).ToArray();
        recorder.SlowestPhases(50).Should().ContainSingle()
            .Which.TotalMicroseconds.Should().BeApproximately(kept.Average(), 0.2, "the phase of each kept sample is its own");
    }

    [Fact]
    public void Phases_must_match_what_the_recorder_keeps()
    {
        var recorder = new LatencyRecorder(capacity: 8, parts: 2);
        recorder.Invoking(r => r.Record(5)).Should().Throw<ArgumentException>();
        new LatencyRecorder(capacity: 8).SlowestPhases(99).Should().BeEmpty();
    }

    private static long TicksOf(long stopwatchTicks) => System.Diagnostics.Stopwatch.GetElapsedTime(0, stopwatchTicks).Ticks;
}
