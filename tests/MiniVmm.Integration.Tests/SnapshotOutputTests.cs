using System.Diagnostics;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>What a snapshot prints: one outcome line whatever the log level; a user's cancel once, not as an error.</summary>
public sealed class SnapshotOutputTests
{
    [KvmFact]
    public void A_snapshot_prints_its_summary_once_at_information_level()
    {
        string image = GuestFiles.TempPath("once.mvs");
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=8 sweeps=0 report_ms=0",
            "--snapshot-to", image, "--snapshot-after", "200ms", "--exit-after-snapshot", "--serial", "none", "--log-level", "information");
        r.ExitCode.Should().Be(0, r.Stderr);
        r.Stderr.Split('\n').Count(l => l.Contains("pages saved", StringComparison.Ordinal)).Should().Be(1, r.Stderr);
        File.Delete(image);
    }

    [KvmFact]
    public void A_cancelled_snapshot_is_reported_once_and_not_as_an_error()
    {
        string image = GuestFiles.TempPath("cancel.mvs");
        // A slow writer and a 1 MiB/s cap: the scan takes a minute, so SIGUSR2 always finds it running.
        using var p = MinivmmProcess.Start("run", "--kernel", GuestFiles.Writer, "--mem", "128M", "--cmdline", "mb=64 sweeps=0 rate=1000 report_ms=0",
            "--snapshot-to", image, "--snapshot-rate-limit", "1", "--serial", "none", "--log-level", "information");
        var err = new StderrLines(p);
        try
        {
            err.WaitFor("vCPUs started").Should().BeTrue(err.Text);
            Kill(p, "USR1");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!File.Exists(image + ".partial") && DateTime.UtcNow < deadline) Thread.Sleep(20);
            Kill(p, "USR2");
            err.WaitFor("cancelled").Should().BeTrue(err.Text);
            Kill(p, "INT");
            p.WaitForExit(30_000).Should().BeTrue();
        }
        finally { if (!p.HasExited) p.Kill(); }
        string all = err.All();
        all.Split('\n').Count(l => l.Contains("cancelled", StringComparison.Ordinal)).Should().Be(1, all);
        all.Should().NotContain("fail:").And.NotContain("crit:").And.NotContain("warn:").And.NotContain("cancelled: cancelled");
        File.Exists(image).Should().BeFalse();
        File.Exists(image + ".partial").Should().BeFalse("a cancelled snapshot leaves nothing behind");
    }

    private static void Kill(Process p, string signal) => Process.Start("kill", [$"-{signal}", p.Id.ToString()])!.WaitForExit();
}
