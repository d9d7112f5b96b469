using KvmSharp;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Incremental;

namespace MiniVmm.Snapshot.Tests.Incremental;

/// <summary>
/// The WP_ASYNC tracker over real anonymous memory without KVM: the changed set must be exactly the pages written
/// (every assertion compares whole sets), whether the pages were populated before tracking or never touched.
/// </summary>
public sealed class WrittenPageTrackerTests
{
    private const long Pages = 1024;          // 4 MiB
    private const long Populated = 512;       // the upper half is never touched before tracking

    public static TheoryData<long[]> WrittenSets() => new()
    {
        Array.Empty<long>(),
        new long[] { 7 },
        new long[] { 100, 101, 102 },                 // adjacent pages: one run from the kernel
        new long[] { 0, Pages - 1 },                  // first and last page of the region
        new long[] { 511, 512 },                      // across the populated / never-touched boundary
        new long[] { 600, 900, 1000 },                // never touched before tracking (WP_UNPOPULATED markers)
        Enumerable.Range(0, 64).Select(i => (long)i * 16).ToArray(),   // scattered: many runs
    };

    [WpAsyncTheory]
    [MemberData(nameof(WrittenSets))]
    public void The_changed_set_is_exactly_the_written_pages(long[] written)
    {
        using var ram = new TrackedRam(Pages, Populated);
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        foreach (long p in written) ram.WritePage(p);

        var changed = tracker.TakeChanged();

        changed.Should().ContainSingle();
        TrackedRam.SetPages(changed[0]).Should().Equal(written.Order());
    }

    [WpAsyncFact]
    public void Writing_a_page_many_times_or_with_other_bytes_counts_it_once()
    {
        using var ram = new TrackedRam(Pages, Populated);
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        for (int i = 0; i < 100; i++) ram.WritePage(3, (ulong)i);
        ram.Memory.Write(new GuestAddress(5 * TrackedRam.Page + 4095), (byte)1);         // the last byte of page 5
        ram.Memory.Write(new GuestAddress(8 * TrackedRam.Page - 4), 0x01020304_05060708UL); // straddles pages 7 and 8

        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(3, 5, 7, 8);
    }

    [WpAsyncFact]
    public void Reads_do_not_count_as_writes()
    {
        using var ram = new TrackedRam(Pages, Populated);
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        ulong sum = 0;
        for (long p = 0; p < Pages; p++) sum += ram.ReadPage(p); // populated and never-touched pages alike
        ram.WritePage(42);

        sum.Should().Be(0xA5UL * Populated);
        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(42);
    }

    [WpAsyncFact]
    public void A_resumed_period_returns_the_seed_and_its_own_writes_only()
    {
        using var ram = new TrackedRam(Pages, Populated);
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        ram.WritePage(1);
        ram.WritePage(700);
        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(1, 700);

        // While idle (the snapshot holds the RAM): these are the snapshot's business, reported only through the seed.
        ram.WritePage(2);
        ram.WritePage(3);
        tracker.IsTracking.Should().BeFalse();
        var seed = new[] { ram.Bitmap(3, 900) };
        tracker.Resume(seed);
        seed[0].Set(901); // the tracker copied the seed: later changes to the caller's bitmap do not leak in
        ram.WritePage(10);
        ram.WritePage(900);
        ram.WritePage(Pages - 1);

        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(3, 10, 900, Pages - 1);

        // A third period with an empty seed starts clean: nothing of the earlier periods remains.
        tracker.Resume([new PageBitmap(Pages)]);
        ram.WritePage(1);
        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(1);
    }

    [WpAsyncFact]
    public void Pages_written_while_the_snapshot_held_the_ram_are_not_reported_without_the_seed()
    {
        using var ram = new TrackedRam(Pages, Populated);
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        tracker.TakeChanged();
        for (long p = 0; p < Pages; p += 2) ram.WritePage(p); // unprotected now: the tracker cannot see them
        tracker.Resume([new PageBitmap(Pages)]);

        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().BeEmpty();
    }

    [WpAsyncFact]
    public void Discarded_pages_count_as_changed_whether_touched_again_or_not()
    {
        using var ram = new TrackedRam(Pages, Populated);
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        ram.Discard(10, 4);            // 10..13 dropped, never touched again: an empty page-table entry
        ram.Discard(20, 2);
        ram.ReadPage(20).Should().Be(0); // read back in as the zero page, without the protection bit
        ram.Discard(30, 1);
        ram.WritePage(30);
        ram.Discard(600, 2);           // never populated: the discard drops the protection marker, and with it the
                                       // proof that the page is unchanged (a superset is safe)

        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(10, 11, 12, 13, 20, 21, 30, 600, 601);
    }

    [WpAsyncFact]
    public void A_write_to_one_small_page_of_a_transparent_huge_page_reports_that_page_only()
    {
        // 8 MiB with MADV_HUGEPAGE: at least two aligned 2 MiB huge pages, all populated before tracking.
        const long pages = 2048;
        using var ram = new TrackedRam(pages, pages, hugePages: true);
        if (!File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled").Contains("[never]"))
            HugePages(ram).Should().BeGreaterThan(0, "the test is about PMD-mapped huge pages");
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        ram.WritePage(1000);
        ram.WritePage(1500);

        // WP_ASYNC splits the protected huge PMD at the write and resolves it on the 4 KiB entry (mm/memory.c,
        // wp_huge_pmd), so the written state stays per small page.
        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(1000, 1500);
    }

    private static long HugePages(TrackedRam ram)
    {
        using var scanner = new PageMapScanner();
        var none = new NoSink();
        var r = ram.Memory.Regions[0];
        return r.Scan(scanner, PageScanQuery.Huge, ref none);
    }

    private struct NoSink : IPageRunSink
    {
        public readonly void OnRun(ulong offset, ulong length, ulong categories) { }
    }

    [WpAsyncFact]
    public void Never_touched_huge_page_memory_reports_only_the_written_pages()
    {
        const long pages = 2048;
        using var ram = new TrackedRam(pages, 0, hugePages: true);
        using var tracker = WrittenPageTracker.Create(ram.Memory); // maps the huge zero page before protecting
        ram.WritePage(5);
        ram.WritePage(1536);

        TrackedRam.SetPages(tracker.TakeChanged()[0]).Should().Equal(5, 1536);
    }

    [WpAsyncFact]
    public void A_paused_writer_thread_s_writes_are_all_reported_round_after_round()
    {
        using var ram = new TrackedRam(Pages, Populated);
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        using var writer = new PausableWriter(ram, seed: 12345);
        for (int round = 0; round < 5; round++)
        {
            writer.RunFor(TimeSpan.FromMilliseconds(30), writes: 320);
            var written = writer.PauseAndTakeWritten(); // "vCPUs paused"
            written.Length.Should().BeInRange(1, (int)Pages / 2, "the writer made progress and left pages alone in round {0}", round);
            var changed = tracker.TakeChanged();
            TrackedRam.SetPages(changed[0]).Should().Equal(written.Order(), "round {0}", round);
            tracker.Resume([new PageBitmap(Pages)]);
        }
    }

    [WpAsyncFact]
    public void Take_changed_releases_the_ram_for_another_userfaultfd()
    {
        using var ram = new TrackedRam(Pages, Populated);
        using var tracker = WrittenPageTracker.Create(ram.Memory);
        var r = ram.Memory.Regions[0];
        using (var other = UserfaultFd.Create(UffdFeatures.PagefaultFlagWp))
            other.Invoking(u => r.RegisterWith(u, UffdRegisterMode.WriteProtect))
                .Should().Throw<LinuxException>("a range belongs to one userfaultfd at a time")
                .Which.Errno.Should().Be(Errno.EBUSY);

        tracker.TakeChanged();

        using var snapshot = UserfaultFd.Create(UffdFeatures.PagefaultFlagWp);
        r.RegisterWith(snapshot, UffdRegisterMode.WriteProtect);
        r.UnregisterFrom(snapshot);
    }

    [WpAsyncFact]
    public void The_lifecycle_is_checked_and_dispose_is_idempotent()
    {
        using var ram = new TrackedRam(Pages, Populated);
        var tracker = WrittenPageTracker.Create(ram.Memory);
        tracker.Method.Should().Be("userfaultfd WP_ASYNC + PAGEMAP_SCAN");
        tracker.IsTracking.Should().BeTrue();
        tracker.Invoking(t => t.Resume([new PageBitmap(Pages)])).Should().Throw<InvalidOperationException>();
        tracker.TakeChanged();
        tracker.Invoking(t => t.TakeChanged()).Should().Throw<InvalidOperationException>();
        tracker.Invoking(t => t.Resume([])).Should().Throw<ArgumentException>();
        tracker.Invoking(t => t.Resume([new PageBitmap(Pages + 1)])).Should().Throw<ArgumentException>();
        tracker.IsTracking.Should().BeFalse("a failed Resume leaves the tracker idle");
        tracker.Resume([new PageBitmap(Pages)]);
        tracker.Dispose();
        tracker.Dispose();
        tracker.Invoking(t => t.TakeChanged()).Should().Throw<ObjectDisposedException>();

        // Disposed while tracking: the RAM is unprotected and free for another registration.
        ram.WritePage(Pages - 1);
        var r = ram.Memory.Regions[0];
        using var other = UserfaultFd.Create(UffdFeatures.PagefaultFlagWp);
        r.RegisterWith(other, UffdRegisterMode.WriteProtect);
    }

    [WpAsyncFact]
    public void File_backed_memory_is_refused_with_a_reason()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, new byte[Pages * (long)TrackedRam.Page]);
            using var file = File.OpenHandle(path);
            using var memory = GuestMemory.MapPrivate(file, [(0UL, (ulong)Pages * TrackedRam.Page, 0L)]);

            WrittenPageTracker.TryCreate(memory, out string? why).Should().BeNull();
            why.Should().Contain("anonymous guest RAM");
        }
        finally { File.Delete(path); }
    }
}
