using MiniVmm.Snapshot.Engines;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Incremental;
using MiniVmm.Snapshot.Tests.Engines;

namespace MiniVmm.Snapshot.Tests.Incremental;

/// <summary>
/// The write-tracking engine with a real WP_ASYNC tracker, over anonymous RAM that a thread keeps writing: a full
/// tracked snapshot, then incremental links. Each link's chain must be RAM at that link's freeze, pages outside the
/// changed set must not be read, and dropping one changed page (the negative control) must be caught.
/// </summary>
public sealed class IncrementalEngineTests
{
    private const long Pages = 2048;

    private static (SnapshotResult Result, string Path) Take(EngineHarness h, IChangeTracker tracker, string name, SnapshotParent? parent,
        bool dropOne = false)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(h.Path)!, name);
        var info = h.Vm.HeaderInfo("write-tracking") with { Parent = parent };
        var sink = new CountingSink(SnapshotFileSink.Create(path, info, fsync: false), Pages);
        var options = new SnapshotOptions
        {
            ChangeTracker = tracker, Incremental = parent is not null, UnsafeDropOneChangedPage = dropOne,
            RateLimitBytesPerSecond = 8L << 20,
        };
        var result = EngineHarness.Finish(h.Start(new WriteTrackingEngine(), sink, options));
        result.Succeeded.Should().BeTrue(result.Error);
        tracker.IsTracking.Should().BeTrue("the engine hands the RAM back to the tracker at its end");
        if (parent is not null)
            Enumerable.Range(0, (int)Pages).Count(p => sink.CountOf(p) > 1).Should().Be(0, "every changed page is saved once");
        return (result, path);
    }

    /// <summary>Pages of the chain at <paramref name="tip"/> that differ from RAM at the last freeze.</summary>
    private static List<long> Mismatches(EngineHarness h, string tip)
    {
        var expected = h.Vm.RamAtFreeze!;
        using var chain = SnapshotChain.Open(tip);
        var page = new byte[SnapshotFormat.PageSize];
        var wrong = new List<long>();
        for (long p = 0; p < Pages; p++)
        {
            chain.ReadPages(0, p, page);
            if (!expected.AsSpan((int)(p * SnapshotFormat.PageSize), SnapshotFormat.PageSize).SequenceEqual(page)) wrong.Add(p);
        }
        return wrong;
    }

    [WpAsyncFact]
    public void Each_link_of_a_chain_taken_while_ram_is_written_is_ram_at_its_freeze()
    {
        using var h = new EngineHarness(Pages, touchedPages: 1024, hugePages: true);
        using var tracker = WrittenPageTracker.Create(h.Vm.Memory, startTracking: false);
        h.Vm.WaitForPrefill();
        var (first, path) = Take(h, tracker, "link-0.mvs", null);
        first.Incremental.Should().BeFalse();
        Mismatches(h, path).Should().BeEmpty("the full link is RAM at its freeze");
        SnapshotParent parent;
        using (var f = SnapshotFile.Open(path)) parent = f.Identity;
        first.SnapshotId.Should().Be(parent.SnapshotId);
        first.TrailerChecksum.Should().Be(parent.TrailerChecksum);
        for (int i = 1; i <= 3; i++)
        {
            h.Vm.KeepsWriting(Pages / 4).Should().BeTrue();
            var (link, linkPath) = Take(h, tracker, $"link-{i}.mvs", parent);
            link.Incremental.Should().BeTrue();
            link.ChangedPages.Should().BeInRange(1, Pages);
            using (var f = SnapshotFile.Open(linkPath))
            {
                f.Parent.Should().Be(parent);
                f.PresentPages(0).Should().Be(link.ChangedPages, "a link stores exactly the changed pages, zero ones included");
                parent = f.Identity;
            }
            Mismatches(h, linkPath).Should().BeEmpty($"link {i} with its parents is RAM at its freeze");
        }
        h.Vm.KeepsWriting(4 * Pages).Should().BeTrue("all RAM is writable again after the handover");
    }

    [WpAsyncFact]
    public void A_link_that_drops_one_changed_page_is_caught()
    {
        using var h = new EngineHarness(Pages, touchedPages: 1024);
        using var tracker = WrittenPageTracker.Create(h.Vm.Memory, startTracking: false);
        h.Vm.WaitForPrefill();
        var (_, basePath) = Take(h, tracker, "base.mvs", null);
        SnapshotParent parent;
        using (var f = SnapshotFile.Open(basePath)) parent = f.Identity;
        h.Vm.KeepsWriting(Pages).Should().BeTrue();
        var (_, bad) = Take(h, tracker, "bad.mvs", parent, dropOne: true);
        Mismatches(h, bad).Should().ContainSingle("exactly the dropped page is stale");
    }

    [WpAsyncFact]
    public void An_incremental_snapshot_without_a_tracked_change_set_is_refused()
    {
        using var h = new EngineHarness(Pages, touchedPages: 1024);
        using var tracker = WrittenPageTracker.Create(h.Vm.Memory, startTracking: false);
        var info = h.Vm.HeaderInfo("write-tracking") with { Parent = new SnapshotParent(Guid.NewGuid(), 1) };
        using var sink = SnapshotFileSink.Create(h.Path, info, fsync: false);
        var act = () => h.Start(new WriteTrackingEngine(), sink, new SnapshotOptions { ChangeTracker = tracker, Incremental = true });
        act.Should().Throw<SnapshotException>().WithMessage("*no tracker recorded*");
    }
}
