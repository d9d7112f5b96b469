using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Incremental snapshots of a running self-checking writer (random pattern, 2 vCPUs): a chain of links, each restored
/// in every memory mode, the merged chain, and the negative control that proves a missing page is caught.
/// </summary>
public sealed class IncrementalChainTests : IDisposable
{
    // 16 MiB buffer (4096 pages) written at 20000 pages/s: a link 60 ms after the last one holds about a quarter of it.
    private const string WriterArgs = "mb=16 sweeps=0 cpus=2 pattern=rand rate=20000 report_ms=0";
    private const int Cpus = 2;
    private readonly string _dir = Directory.CreateTempSubdirectory("mv-chain-").FullName;

    private static SnapshotResult TakeLink(GuestRun run, SnapshotController controller, string path, SnapshotOptions? options = null) =>
        SnapshotHarness.TakeLink(run, controller, path, options);

    /// <summary>Restores <paramref name="path"/> and lets the writer sweep its whole buffer twice more: it re-reads and checks every page.</summary>
    private static void RestoredWriterChecksOut(string path, RestoreMemoryMode mode, string what)
    {
        var (restored, serial) = SnapshotHarness.Restore(path, options: new RestoreOptions { Memory = mode });
        using (restored)
        {
            for (int v = 0; v < Cpus; v++)
            {
                ulong from = restored.VcpuStatus(v, GuestAbi.VcpuStatus.Generation);
                int vcpu = v;
                restored.WaitUntil(() => restored.VcpuStatus(vcpu, GuestAbi.VcpuStatus.Generation) >= from + 2, $"{what}: two more sweeps of vCPU {v}",
                    TimeSpan.FromSeconds(60));
            }
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0, $"{what} ({mode}) must restore the writer's memory exactly; serial: {serial()}");
            restored.Stop();
        }
    }

    private static (GuestRun Run, SnapshotController Controller) BootWriter()
    {
        var (run, _) = GuestRun.Boot(GuestFiles.Writer, WriterArgs, Cpus, mem: 64UL << 20);
        var controller = new SnapshotController(run.Vm, GuestRun.Loggers);
        run.Start();
        run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 1, "one sweep");
        return (run, controller);
    }

    [KvmFact]
    public void Ten_links_taken_while_the_writer_runs_each_restore_in_every_mode_and_merge_to_the_same_image()
    {
        var links = new List<(string Path, SnapshotResult Result)>();
        var (run, controller) = BootWriter();
        using (run)
        {
            for (int i = 0; i < 10; i++)
            {
                Thread.Sleep(60);
                string path = Path.Combine(_dir, $"ck-{i}.mvs");
                var r = TakeLink(run, controller, path);
                r.Succeeded.Should().BeTrue(r.Error);
                r.Incremental.Should().Be(i > 0, "the first snapshot is full, every later one a link of the one before");
                links.Add((path, r));
            }
            run.Stop();
        }
        long ramPages = (64L << 20) / SnapshotFormat.PageSize;
        foreach (var (path, r) in links.Skip(1))
        {
            using var file = SnapshotFile.Open(path);
            file.PresentPages(0).Should().Be(r.ChangedPages, "a link stores exactly its changed pages");
            r.ChangedPages.Should().BeInRange(1, ramPages / 2, "only what the guest wrote since the last link");
        }
        using (var chain = SnapshotChain.Open(links[^1].Path))
        {
            chain.Links.Select(l => l.Path).Should().Equal(links.Select(l => l.Path).Reverse());
            string merged = Path.Combine(_dir, "merged.mvs");
            SnapshotMerge.Merge(chain, merged);
            using var full = SnapshotFile.Open(merged);
            full.IsIncremental.Should().BeFalse();
            var a = new byte[512 * SnapshotFormat.PageSize];
            var b = new byte[a.Length];
            for (long p = 0; p < ramPages; p += 512)
            {
                chain.ReadPages(0, p, a);
                full.ReadPages(0, p, b);
                a.AsSpan().SequenceEqual(b).Should().BeTrue($"the merged image equals the chain's at pages {p}..{p + 511}");
            }
            RestoredWriterChecksOut(merged, RestoreMemoryMode.Eager, "the merged chain");
        }
        for (int i = 0; i < links.Count; i++)
            foreach (var mode in new[] { RestoreMemoryMode.Eager, RestoreMemoryMode.Lazy, RestoreMemoryMode.Mmap })
                RestoredWriterChecksOut(links[i].Path, mode, $"link {i}");
    }

    [KvmFact]
    public void A_link_that_lacks_one_changed_page_is_caught_by_the_writer()
    {
        var (run, controller) = BootWriter();
        string full = Path.Combine(_dir, "full.mvs"), good = Path.Combine(_dir, "good.mvs"), bad = Path.Combine(_dir, "bad.mvs");
        using (run)
        {
            TakeLink(run, controller, full).Succeeded.Should().BeTrue();
            Thread.Sleep(60);
            TakeLink(run, controller, good).Succeeded.Should().BeTrue();
            Thread.Sleep(60);
            var r = TakeLink(run, controller, bad, new SnapshotOptions { UnsafeDropOneChangedPage = true });
            r.Succeeded.Should().BeTrue(r.Error);
            run.Stop();
        }
        RestoredWriterChecksOut(good, RestoreMemoryMode.Eager, "the good link");
        var (restored, _) = SnapshotHarness.Restore(bad, options: new RestoreOptions { Memory = RestoreMemoryMode.Eager });
        using (restored)
        {
            restored.WaitUntil(() => restored.Status(GuestAbi.Status.TotalFailures) > 0, "the writer to find the missing page",
                TimeSpan.FromSeconds(60));
            restored.Stop();
        }
    }

    [KvmFact]
    public void An_eagerly_restored_vm_continues_the_chain_of_its_snapshot()
    {
        var (run, controller) = BootWriter();
        string first = Path.Combine(_dir, "first.mvs"), next = Path.Combine(_dir, "next.mvs");
        using (run)
        {
            TakeLink(run, controller, first).Succeeded.Should().BeTrue();
            run.Stop();
        }
        var (restored, _) = SnapshotHarness.Restore(first, start: false, options: new RestoreOptions { Memory = RestoreMemoryMode.Eager });
        using (restored)
        {
            var restoredController = new SnapshotController(restored.Vm, GuestRun.Loggers);
            restoredController.StartChainFromRestore();
            restoredController.NextParent.Should().NotBeNull("writes are tracked from the first instruction");
            restored.Start();
            Thread.Sleep(100);
            var r = TakeLink(restored, restoredController, next);
            r.Succeeded.Should().BeTrue(r.Error);
            r.Incremental.Should().BeTrue();
            restored.Stop();
        }
        using (var chain = SnapshotChain.Open(next)) chain.Links.Should().HaveCount(2);
        RestoredWriterChecksOut(next, RestoreMemoryMode.Lazy, "a link of a restored VM");
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }
}
