using MiniVmm.Snapshot;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// An `exec:` reader that stops reading (here: it stops itself with SIGSTOP before reading a byte, and is never
/// continued) must neither freeze the guest nor keep a cancel from taking effect. Without the non-blocking destination
/// each of these snapshots would hang for ever (the harness then fails with a timeout).
/// </summary>
public sealed class StuckReaderTests
{
    private static GuestRun StartWriter(string args) => SnapshotFailureTests.StartWriter(args);

    private static void GuestStillHealthy(GuestRun run) => SnapshotFailureTests.GuestStillHealthy(run);

    /// <summary>A reader that writes its pid to <paramref name="pidFile"/>, then stops itself before reading.</summary>
    private static string StoppedReader(string pidFile) => $"exec:echo $$ > '{pidFile}'; kill -STOP $$; cat > /dev/null";

    private static void ReaderWasKilled(string pidFile)
    {
        int pid = int.Parse(File.ReadAllText(pidFile).Trim());
        File.Delete(pidFile);
        // Reaped by the VMM, so no /proc entry is left (a zombie would still have one).
        Directory.Exists($"/proc/{pid}").Should().BeFalse("a failed snapshot's reader is killed, not waited for");
    }

    [KvmFact]
    public void A_stopped_reader_fails_the_snapshot_from_the_fault_path_and_the_guest_runs_on()
    {
        string pidFile = GuestFiles.TempPath("reader.pid");
        using var run = StartWriter("mb=64 sweeps=0");
        // No stall timeout: only the fault path's bounded wait for buffer space can end this snapshot.
        var result = SnapshotHarness.Take(run, StoppedReader(pidFile), new SnapshotOptions { StallTimeout = Timeout.InfiniteTimeSpan });
        result.Succeeded.Should().BeFalse();
        result.Cancelled.Should().BeFalse();
        result.Error.Should().Contain("stalled");
        GuestStillHealthy(run);
        ReaderWasKilled(pidFile);
    }

    [KvmFact]
    public void Cancel_is_honoured_while_the_reader_is_stopped()
    {
        string pidFile = GuestFiles.TempPath("reader.pid");
        using var run = StartWriter("mb=8 sweeps=0 rate=2000");
        var result = SnapshotHarness.Take(run, StoppedReader(pidFile), new SnapshotOptions { StallTimeout = Timeout.InfiniteTimeSpan },
            controller =>
            {
                Thread.Sleep(500);
                controller.Cancel().Should().BeTrue();
            });
        result.Succeeded.Should().BeFalse();
        result.Cancelled.Should().BeTrue(result.Error);
        GuestStillHealthy(run);
        ReaderWasKilled(pidFile);
    }

    [KvmTheory]
    [InlineData(SnapshotMode.WriteTracking)]
    [InlineData(SnapshotMode.StopAndCopy)]
    [InlineData(SnapshotMode.DirtyLog)]
    public void A_reader_that_takes_no_data_for_the_stall_timeout_fails_the_snapshot(SnapshotMode mode)
    {
        string pidFile = GuestFiles.TempPath("reader.pid");
        using var run = StartWriter("mb=8 sweeps=0 rate=2000");
        var result = SnapshotHarness.Take(run, StoppedReader(pidFile), new SnapshotOptions { Mode = mode, StallTimeout = TimeSpan.FromMilliseconds(500) });
        result.Succeeded.Should().BeFalse();
        result.Error.Should().Contain("took no data");
        GuestStillHealthy(run);
        ReaderWasKilled(pidFile);
    }
}
