using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>
/// The write-tracking engine end to end without KVM: real userfaultfd write protection over anonymous RAM, a thread
/// writing generation stamps all through the snapshot, a real snapshot file. The image must be RAM at the freeze, every
/// page must reach the destination exactly once, and the writer must never stay blocked — also when cancelled or
/// when the destination fails.
/// </summary>
public sealed class WriteTrackingEngineTests
{
    private const long Pages = 2048;        // 8 MiB
    private const long TouchedPages = 1024; // the upper half is never touched before the freeze

    public static TheoryData<int, bool, int, bool> Shapes() => new()
    {
        // fault-around pages, adaptive, scan chunk pages, huge pages
        { 512, true, 512, true },    // the defaults
        { 1, false, 16, false },     // one page per fault, small scan steps: the most claim races
        { 16, true, 64, false },     // adaptive windows growing from 16 pages
    };

    [UffdWriteProtectTheory]
    [MemberData(nameof(Shapes))]
    public void The_image_is_ram_at_the_freeze_and_every_page_is_saved_exactly_once(int faultAround, bool adaptive, int chunk, bool huge)
    {
        using var h = new EngineHarness(Pages, TouchedPages, huge);
        h.Vm.WaitForPrefill();
        var sink = h.CreateSink("write-tracking");
        // The cap keeps the scan busy for about half a second, so the writer's faults race it for real.
        var options = new SnapshotOptions
        {
            FaultAroundPages = faultAround, AdaptiveFaultAround = adaptive, ScanChunkPages = chunk,
            RateLimitBytesPerSecond = 8L << 20,
        };
        var result = EngineHarness.Finish(h.Start(new WriteTrackingEngine(), sink, options));

        result.Succeeded.Should().BeTrue(result.Error);
        result.FaultsServed.Should().BeGreaterThan(0, "the writer wrote protected pages while the scan ran");
        // The slowest faults' phases are part of their stalls: together no longer than the longest stall.
        result.SlowFaultPhases.Should().NotBeNull();
        var slow = result.SlowFaultPhases!;
        (slow.Copy + slow.ClaimWait + slow.Unprotect).Should().BeLessThanOrEqualTo(result.FaultStallMax);
        (slow.Copy + slow.ClaimWait + slow.Unprotect).Should().BePositive();
        Enumerable.Range(0, (int)Pages).Where(p => sink.CountOf(p) != 1).Should().BeEmpty("every page is handed over exactly once");
        sink.Completed.Should().BeTrue();
        h.Vm.Pauses.Should().Be(1);
        h.Vm.Resumes.Should().Be(1);
        h.Vm.PrepareCalls.Should().Be(1);
        h.AssertImageIsRamAtFreeze(result);
        h.Vm.KeepsWriting(4 * Pages).Should().BeTrue("all RAM is writable again after the snapshot");
    }

    [UffdWriteProtectTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Never_written_ram_is_recorded_as_zero_without_being_read(bool huge)
    {
        // The writer keeps to the lower half, so the upper half stays on the zero page the engine maps in before the
        // freeze (the huge zero page on THP memory, one 4 KiB zero page per 2 MiB otherwise); the rest is read.
        using var h = new EngineHarness(Pages, TouchedPages, huge, untouchedStaysUnwritten: true);
        h.Vm.WaitForPrefill();
        var sink = h.CreateSink("write-tracking");
        var result = EngineHarness.Finish(h.Start(new WriteTrackingEngine(), sink, new SnapshotOptions { RateLimitBytesPerSecond = 8L << 20 }));

        result.Succeeded.Should().BeTrue(result.Error);
        result.ZeroPagesUnread.Should().BeInRange(2, Pages - TouchedPages, "the upper half is never written");
        result.ZeroPagesUnread.Should().BeLessThanOrEqualTo(result.ZeroPages);
        Enumerable.Range(0, (int)Pages).Where(p => sink.CountOf(p) != 1).Should().BeEmpty("every page is handed over exactly once");
        h.AssertImageIsRamAtFreeze(result);
    }

    [UffdWriteProtectFact]
    public void A_real_time_fault_thread_serves_the_same_point_in_time_image()
    {
        using var h = new EngineHarness(Pages, TouchedPages);
        h.Vm.WaitForPrefill();
        var sink = h.CreateSink("write-tracking");
        var options = new SnapshotOptions { RealtimeFaultThread = true, RateLimitBytesPerSecond = 8L << 20 };
        var result = EngineHarness.Finish(h.Start(new WriteTrackingEngine(), sink, options));

        result.Succeeded.Should().BeTrue(result.Error);
        result.RealtimeFaultThread.Should().BeTrue("the tests run with CAP_SYS_NICE (as root)");
        result.FaultsServed.Should().BeGreaterThan(0);
        Enumerable.Range(0, (int)Pages).Where(p => sink.CountOf(p) != 1).Should().BeEmpty();
        h.AssertImageIsRamAtFreeze(result);
        h.Vm.KeepsWriting(4 * Pages).Should().BeTrue();
    }

    [UffdWriteProtectFact]
    public void Without_write_protection_the_image_is_not_point_in_time()
    {
        // The negative control: the same run with protection skipped must be caught by the same check.
        using var h = new EngineHarness(Pages, TouchedPages);
        h.Vm.WaitForPrefill();
        var sink = h.CreateSink("write-tracking");
        var options = new SnapshotOptions { UnsafeSkipWriteProtection = true, RateLimitBytesPerSecond = 8L << 20 };
        var result = EngineHarness.Finish(h.Start(new WriteTrackingEngine(), sink, options));

        result.Succeeded.Should().BeTrue(result.Error);
        h.Invoking(x => x.AssertImageIsRamAtFreeze(result)).Should().Throw<Exception>();
    }

    [UffdWriteProtectFact]
    public void A_cancelled_snapshot_leaves_no_file_and_a_writable_vm()
    {
        using var h = new EngineHarness(Pages, TouchedPages);
        h.Vm.WaitForPrefill();
        var sink = h.CreateSink("write-tracking");
        // The scan is throttled to ~16 pages/s and a fault saves only its own page, so the guest's writes cannot
        // finish the snapshot before the cancel (fault-around or a full sweep of writes would, on a fast machine).
        var options = new SnapshotOptions { RateLimitBytesPerSecond = 64 << 10, FaultAroundPages = 1, AdaptiveFaultAround = false };
        var job = h.Start(new WriteTrackingEngine(), sink, options);
        h.Vm.KeepsWriting(32).Should().BeTrue("faults are served while the throttled scan runs");
        job.Cancel();
        var result = EngineHarness.Finish(job);

        result.Succeeded.Should().BeFalse();
        result.Cancelled.Should().BeTrue();
        result.Error.Should().Be("cancelled");
        sink.Aborted.Should().BeTrue();
        sink.Completed.Should().BeFalse();
        File.Exists(h.Path).Should().BeFalse();
        File.Exists(h.Path + ".partial").Should().BeFalse();
        h.Vm.KeepsWriting(4 * Pages).Should().BeTrue("cancel un-protects all RAM");
    }

    [UffdWriteProtectFact]
    public void A_failing_destination_fails_the_snapshot_cleanly()
    {
        using var h = new EngineHarness(Pages, TouchedPages);
        h.Vm.WaitForPrefill();
        var sink = h.CreateSink("write-tracking", failAfterPages: 300);
        var result = EngineHarness.Finish(h.Start(new WriteTrackingEngine(), sink, new SnapshotOptions()));

        result.Succeeded.Should().BeFalse();
        result.Cancelled.Should().BeFalse();
        result.Error.Should().Contain("No space left on device"); // reported by the scanner or the fault path, whichever hit it first
        sink.Aborted.Should().BeTrue();
        File.Exists(h.Path).Should().BeFalse();
        File.Exists(h.Path + ".partial").Should().BeFalse();
        h.Vm.KeepsWriting(4 * Pages).Should().BeTrue("a failed snapshot un-protects all RAM");
    }

    [UffdWriteProtectFact]
    public void A_second_snapshot_of_the_same_vm_works_after_the_first()
    {
        using var h = new EngineHarness(Pages, TouchedPages);
        h.Vm.WaitForPrefill();
        var first = EngineHarness.Finish(h.Start(new WriteTrackingEngine(), h.CreateSink("write-tracking"), new SnapshotOptions()));
        first.Succeeded.Should().BeTrue(first.Error);
        var sink = h.CreateSink("write-tracking");
        var second = EngineHarness.Finish(h.Start(new WriteTrackingEngine(), sink, new SnapshotOptions { RateLimitBytesPerSecond = 16L << 20 }));
        second.Succeeded.Should().BeTrue(second.Error);
        Enumerable.Range(0, (int)Pages).Where(p => sink.CountOf(p) != 1).Should().BeEmpty();
        h.AssertImageIsRamAtFreeze(second);
    }

    [Fact]
    public void Invalid_options_are_refused_before_the_vm_is_touched()
    {
        using var h = new EngineHarness(64, 64);
        var sink = h.CreateSink("write-tracking");
        h.Invoking(x => x.Start(new WriteTrackingEngine(), sink, new SnapshotOptions { FaultAroundPages = 3 }))
            .Should().Throw<AggregateException>().WithInnerException<ArgumentException>();
        h.Vm.Pauses.Should().Be(0);
        h.Vm.PrepareCalls.Should().Be(0);
        sink.Abort();
    }
}
