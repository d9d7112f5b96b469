using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// The self-checking writer proves snapshots are point-in-time copies: a restored writer that finds a page holding
/// the wrong generation exits non-zero.
/// </summary>
public sealed class LiveSnapshotTests
{
    private const int Sweeps = 20000;

    [KvmTheory]
    [InlineData(SnapshotMode.WriteTracking, 1)]
    [InlineData(SnapshotMode.WriteTracking, 2)]
    [InlineData(SnapshotMode.StopAndCopy, 1)]
    [InlineData(SnapshotMode.StopAndCopy, 2)]
    [InlineData(SnapshotMode.DirtyLog, 1)]
    [InlineData(SnapshotMode.DirtyLog, 2)]
    public void Snapshot_of_a_writer_at_max_rate_restores_and_completes_every_sweep(SnapshotMode mode, int cpus)
    {
        string image = GuestFiles.TempPath("snap.mvs");
        var (run, serial) = GuestRun.Boot(GuestFiles.Writer, $"mb=64 sweeps={Sweeps} cpus={cpus}", cpus);
        SnapshotResult result;
        using (run)
        {
            run.Start();
            run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 2, "two sweeps");
            result = SnapshotHarness.Take(run, image, new SnapshotOptions { Mode = mode });
            result.Succeeded.Should().BeTrue(result.Error);
            run.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
        }
        if (mode == SnapshotMode.WriteTracking) result.FaultsServed.Should().BePositive("the writer kept writing during the snapshot");

        var (restored, restoredSerial) = SnapshotHarness.Restore(image, start: false);
        using (restored)
        {
            ulong generationAtSnapshot = restored.VcpuStatus(0, GuestAbi.VcpuStatus.Generation);
            generationAtSnapshot.Should().BeLessThanOrEqualTo(Sweeps - 2, "the restored guest must still have sweeps to do");
            restored.Start();
            restored.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), restoredSerial());
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
            for (int v = 0; v < cpus; v++) restored.VcpuStatus(v, GuestAbi.VcpuStatus.Generation).Should().Be(Sweeps);
        }
        File.Delete(image);
    }

    [KvmFact]
    public void Without_write_protection_the_restored_writer_detects_the_inconsistency()
    {
        string image = GuestFiles.TempPath("unsafe.mvs");
        var (run, _) = GuestRun.Boot(GuestFiles.Writer, $"mb=64 sweeps={Sweeps}");
        using (run)
        {
            run.Start();
            run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 2, "two sweeps");
            var result = SnapshotHarness.Take(run, image, new SnapshotOptions { UnsafeSkipWriteProtection = true });
            result.Succeeded.Should().BeTrue(result.Error);
            run.Stop();
        }
        var (restored, _) = SnapshotHarness.Restore(image);
        using (restored)
        {
            var status = restored.WaitForExit(TimeSpan.FromMinutes(3));
            status.Should().Be(new VmExitStatus(VmStopReason.GuestExit, GuestAbi.ExitFailures), "the negative control must be caught");
            restored.Status(GuestAbi.Status.TotalFailures).Should().BePositive();
        }
        File.Delete(image);
    }

    [KvmFact]
    public void Pages_first_written_during_the_snapshot_come_back_as_zero()
    {
        string image = GuestFiles.TempPath("first-touch.mvs");
        const int pages = 64 * 256;
        var (run, _) = GuestRun.Boot(GuestFiles.Writer, "mb=64 sweeps=2 rate=100000");
        ulong indexAtStart;
        using (run)
        {
            run.Start();
            run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.CurrentPageIndex) >= 1000, "part of the first sweep");
            indexAtStart = run.VcpuStatus(0, GuestAbi.VcpuStatus.CurrentPageIndex);
            var result = SnapshotHarness.Take(run, image, new SnapshotOptions());
            result.Succeeded.Should().BeTrue(result.Error);
            result.FaultsServed.Should().BePositive("the writer touched new pages while the snapshot ran");
            run.WaitForExit(TimeSpan.FromMinutes(2)).GuestStatus.Should().Be(0);
        }
        using (var file = SnapshotFile.Open(image))
        {
            long firstBufferPage = (long)(GuestAbi.BufferGpa / 4096);
            file.IsPresent(0, firstBufferPage).Should().BeTrue("the writer had written it before the snapshot");
            file.IsPresent(0, firstBufferPage + pages - 1).Should().BeFalse("the last page was untouched at the freeze");
        }
        var (restored, serial) = SnapshotHarness.Restore(image);
        using (restored)
        {
            ulong index = restored.VcpuStatus(0, GuestAbi.VcpuStatus.CurrentPageIndex);
            index.Should().BeLessThan(pages);
            restored.WaitForExit(TimeSpan.FromMinutes(2)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
        }
        indexAtStart.Should().BeLessThan(pages);
        File.Delete(image);
    }

    [KvmFact]
    public void Dirty_log_past_its_converge_timeout_stops_and_copies_the_rest_and_still_restores()
    {
        string image = GuestFiles.TempPath("timeout.mvs");
        var (run, serial) = GuestRun.Boot(GuestFiles.Writer, $"mb=64 sweeps={Sweeps}");
        SnapshotResult result;
        using (run)
        {
            run.Start();
            run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 2, "two sweeps");
            // A zero timeout: the first full pass is the only running iteration; the max-rate writer has dirtied far more
            // than the stop threshold by then, so the rest must be copied with the guest paused.
            result = SnapshotHarness.Take(run, image, new SnapshotOptions { Mode = SnapshotMode.DirtyLog, DirtyLogConvergeTimeout = TimeSpan.Zero });
            result.Succeeded.Should().BeTrue(result.Error);
            run.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
        }
        result.Converged.Should().BeFalse();
        result.Iterations.Should().Be(2, "one running pass, then the paused copy");

        var (restored, restoredSerial) = SnapshotHarness.Restore(image);
        using (restored)
        {
            restored.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), restoredSerial());
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
        }
        File.Delete(image);
    }
}
