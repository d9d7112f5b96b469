using System.Diagnostics;
using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>Snapshots that fail or are cancelled lose nothing: no output that looks valid, and the guest runs on unharmed.</summary>
public sealed class SnapshotFailureTests
{
    internal static GuestRun StartWriter(string args = "mb=64 sweeps=0")
    {
        var (run, _) = GuestRun.Boot(GuestFiles.Writer, args);
        run.Start();
        run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 1, "the first sweep");
        return run;
    }

    /// <summary>The guest keeps making progress and has found no inconsistency.</summary>
    internal static void GuestStillHealthy(GuestRun run)
    {
        ulong gen = run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation);
        run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) > gen + 1, "more sweeps after the snapshot ended");
        run.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
    }

    private static void NoOutputLeft(string path)
    {
        File.Exists(path).Should().BeFalse();
        File.Exists(path + ".partial").Should().BeFalse();
    }

    [KvmFact]
    public void Cancel_half_way_leaves_no_file_and_no_blocked_vcpu()
    {
        string image = GuestFiles.TempPath("cancel.mvs");
        // A slow guest and a 1 MiB/s cap on the scan: the fault path saves almost nothing, so the 8 MiB take ~8 s and
        // the cancel after 300 ms lands half-way (with a fast guest its faults would save everything at once).
        using var run = StartWriter("mb=8 sweeps=0 rate=2000");
        var result = SnapshotHarness.Take(run, image, new SnapshotOptions { RateLimitBytesPerSecond = 1 << 20 }, controller =>
        {
            Thread.Sleep(300);
            controller.Cancel().Should().BeTrue();
        });
        result.Succeeded.Should().BeFalse();
        result.Cancelled.Should().BeTrue();
        NoOutputLeft(image);
        GuestStillHealthy(run);
    }

    [KvmFact]
    public void Destination_disk_full_fails_cleanly_and_the_guest_runs_on()
    {
        string mount = Path.Combine(Path.GetTempPath(), $"minivmm-full-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        Sh($"mount -t tmpfs -o size=8m tmpfs {mount}").Should().Be(0, "the test mounts a small tmpfs (needs root)");
        try
        {
            string image = Path.Combine(mount, "full.mvs");
            using var run = StartWriter();
            var result = SnapshotHarness.Take(run, image, new SnapshotOptions());
            result.Succeeded.Should().BeFalse();
            result.Error.Should().Contain("full");
            NoOutputLeft(image);
            GuestStillHealthy(run);
        }
        finally
        {
            Sh($"umount {mount}");
            Directory.Delete(mount);
        }
    }

    [KvmFact]
    public void Exec_reader_that_exits_early_fails_the_snapshot_and_the_guest_runs_on()
    {
        using var run = StartWriter();
        var result = SnapshotHarness.Take(run, "exec:head -c 100000 > /dev/null", new SnapshotOptions());
        result.Succeeded.Should().BeFalse();
        GuestStillHealthy(run);
    }

    [KvmFact]
    public void Exec_destination_receives_the_stream_form_that_converts_and_restores()
    {
        string stream = GuestFiles.TempPath("stream.bin");
        string image = GuestFiles.TempPath("converted.mvs");
        var (run, _) = GuestRun.Boot(GuestFiles.Writer, "mb=16 sweeps=20000");
        using (run)
        {
            run.Start();
            run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 2, "two sweeps");
            var result = SnapshotHarness.Take(run, $"exec:cat > '{stream}'", new SnapshotOptions());
            result.Succeeded.Should().BeTrue(result.Error);
            run.Stop();
        }
        SnapshotConverter.Convert(stream, image);
        using (var file = SnapshotFile.Open(image)) file.Verify();
        var (restored, serial) = SnapshotHarness.Restore(image);
        using (restored)
            restored.WaitForExit(TimeSpan.FromMinutes(2)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
        File.Delete(stream);
        File.Delete(image);
    }

    [KvmFact]
    public void Unwritable_destination_is_refused_before_the_vm_is_touched()
    {
        using var run = StartWriter();
        var result = SnapshotHarness.Take(run, "/proc/minivmm-cannot-write-here/snap.mvs", new SnapshotOptions());
        result.Succeeded.Should().BeFalse();
        result.Error.Should().NotBeNullOrEmpty();
        GuestStillHealthy(run);
    }

    [KvmFact]
    public void Twenty_snapshots_in_a_row_do_not_leak_fds_threads_or_memory()
    {
        using var run = StartWriter("mb=32 sweeps=0");
        string image = GuestFiles.TempPath("repeat.mvs");
        void Once()
        {
            var result = SnapshotHarness.Take(run, image, new SnapshotOptions());
            result.Succeeded.Should().BeTrue(result.Error);
            File.Delete(image);
        }
        // Warm-up: one-time growth (JIT, thread-pool threads, their malloc arenas) is not a per-snapshot leak; in a long
        // test process two warm-up snapshots were not always enough (161 MiB once in a full run, 0 alone).
        for (int i = 0; i < 5; i++) Once();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int fds = Directory.GetFiles("/proc/self/fd").Length;
        int threads = Process.GetCurrentProcess().Threads.Count;
        long rss = Process.GetCurrentProcess().WorkingSet64;
        for (int i = 0; i < 20; i++) Once();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Directory.GetFiles("/proc/self/fd").Length.Should().BeLessThanOrEqualTo(fds + 2);
        Process.GetCurrentProcess().Threads.Count.Should().BeLessThanOrEqualTo(threads + 4);
        Process.GetCurrentProcess().Refresh();
        (Process.GetCurrentProcess().WorkingSet64 - rss).Should().BeLessThan(32L << 20);
        GuestStillHealthy(run);
    }

    private static int Sh(string command)
    {
        using var p = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardError = true })!;
        p.WaitForExit();
        return p.ExitCode;
    }
}
