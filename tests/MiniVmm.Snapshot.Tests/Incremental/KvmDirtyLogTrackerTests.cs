using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Incremental;

namespace MiniVmm.Snapshot.Tests.Incremental;

/// <summary>The dirty-log fallback against a fake source whose "KVM log" is a set of pages the test marks.</summary>
public sealed class KvmDirtyLogTrackerTests
{
    private const long Pages = 300; // not a multiple of 64: the last log word is partial

    private sealed class FakeDirtySource(long pages) : ISnapshotSource, IDisposable
    {
        private readonly HashSet<long> _log = [];
        public GuestMemory Memory { get; } = GuestMemory.CreateAnonymous((ulong)pages * GuestMemory.PageSize);
        public bool Logging { get; private set; }
        public int Enables { get; private set; }

        /// <summary>A vCPU write: logged only while logging is on, as KVM does.</summary>
        public void Write(long page) { if (Logging) _log.Add(page); }

        public void SetDirtyLogging(bool enabled)
        {
            Logging = enabled;
            if (enabled) Enables++;
        }

        public void GetAndClearDirtyLog(int region, Span<ulong> bitmap)
        {
            region.Should().Be(0);
            foreach (long p in _log) bitmap[(int)(p / 64)] |= 1UL << (int)(p % 64);
            _log.Clear();
        }

        public string DescribeConfig() => "{}";
        public void PrepareMemory() { }
        public void Pause() { }
        public IReadOnlyList<StateSection> CaptureState() => [];
        public void ScheduleResume(Action onResumed) => onResumed();
        public void Resume() { }
        public void Dispose() => Memory.Dispose();
    }

    [Fact]
    public void The_changed_set_is_the_logged_pages_and_the_seed_and_idle_writes_are_dropped()
    {
        using var source = new FakeDirtySource(Pages);
        source.SetDirtyLogging(true);
        source.Write(5); // before the tracker: stale, must not be reported
        using var tracker = new KvmDirtyLogTracker(source);
        tracker.Method.Should().Be("KVM dirty log");
        foreach (long p in new long[] { 0, 63, 64, 299 }) source.Write(p);

        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(0, 63, 64, 299);

        source.Write(7);                    // while the snapshot holds the RAM: only through the seed
        source.SetDirtyLogging(false);      // a dirty-log snapshot turns logging off at its end
        var seed = new PageBitmap(Pages);
        seed.Set(8);
        tracker.Resume([seed]);
        source.Logging.Should().BeTrue("Resume turns logging back on");
        source.Write(100);

        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(8, 100);
    }

    [Fact]
    public void The_lifecycle_is_checked_and_dispose_turns_logging_off_once()
    {
        using var source = new FakeDirtySource(Pages);
        var tracker = new KvmDirtyLogTracker(source);
        tracker.Invoking(t => t.Resume([new PageBitmap(Pages)])).Should().Throw<InvalidOperationException>();
        tracker.TakeChanged();
        tracker.Invoking(t => t.TakeChanged()).Should().Throw<InvalidOperationException>();
        tracker.Invoking(t => t.Resume([new PageBitmap(Pages + 1)])).Should().Throw<ArgumentException>();
        tracker.Dispose();
        source.Logging.Should().BeFalse();
        tracker.Dispose();
        tracker.Invoking(t => t.TakeChanged()).Should().Throw<ObjectDisposedException>();
    }
}
