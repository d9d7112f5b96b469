using System.Diagnostics;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>`--snapshot-to` names: %n numbers successive snapshots; an existing file is refused unless --snapshot-overwrite.</summary>
public sealed class SnapshotNamingTests
{
    [KvmFact]
    public void Each_sigusr1_gets_its_own_numbered_file()
    {
        string dir = Directory.CreateTempSubdirectory("mv-naming-").FullName;
        File.WriteAllText(Path.Combine(dir, "vm-1.mvs"), "an earlier file"); // %n skips names that exist
        using var p = Start("--snapshot-to", Path.Combine(dir, "vm-%n.mvs"));
        var err = new StderrLines(p);
        try
        {
            err.WaitFor("vCPUs started").Should().BeTrue(err.Text);
            Signal(p, "USR1");
            err.WaitFor("snapshot (write-tracking)").Should().BeTrue(err.Text);
            Signal(p, "USR1");
            err.WaitFor("snapshot (write-tracking)", count: 2).Should().BeTrue(err.Text);
        }
        finally { Stop(p); }
        File.ReadAllText(Path.Combine(dir, "vm-1.mvs")).Should().Be("an earlier file");
        MinivmmProcess.Run("snapshot", "verify", Path.Combine(dir, "vm-2.mvs")).ExitCode.Should().Be(0);
        MinivmmProcess.Run("snapshot", "verify", Path.Combine(dir, "vm-3.mvs")).ExitCode.Should().Be(0);
        Directory.Delete(dir, recursive: true);
    }

    [KvmFact]
    public void A_second_snapshot_to_the_same_name_is_refused_and_the_first_kept()
    {
        string image = GuestFiles.TempPath("same.mvs");
        using var p = Start("--snapshot-to", image);
        var err = new StderrLines(p);
        try
        {
            err.WaitFor("vCPUs started").Should().BeTrue(err.Text);
            Signal(p, "USR1");
            err.WaitFor("snapshot (write-tracking)").Should().BeTrue(err.Text);
            var first = File.GetLastWriteTimeUtc(image);
            Signal(p, "USR1");
            err.WaitFor("snapshot not started").Should().BeTrue(err.Text);
            err.Text.Should().Contain("--snapshot-overwrite");
            File.GetLastWriteTimeUtc(image).Should().Be(first);
        }
        finally { Stop(p); }
        MinivmmProcess.Run("snapshot", "verify", image).ExitCode.Should().Be(0);
        File.Delete(image);
    }

    [Fact]
    public void An_unknown_placeholder_is_a_usage_error()
    {
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--snapshot-to", "vm-%q.mvs");
        r.ExitCode.Should().Be(120, "a real kernel: only the placeholder check can refuse this");
        r.Stdout.Should().BeEmpty("the guest never ran");
    }

    private static Process Start(params string[] extra) => MinivmmProcess.Start(
        ["run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=8 sweeps=0 report_ms=0", "--serial", "none",
         "--log-level", "information", .. extra]);

    private static void Signal(Process p, string name) => Process.Start("kill", [$"-{name}", p.Id.ToString()])!.WaitForExit();

    private static void Stop(Process p)
    {
        if (!p.HasExited) Signal(p, "TERM");
        if (!p.WaitForExit(30_000)) p.Kill();
    }
}
