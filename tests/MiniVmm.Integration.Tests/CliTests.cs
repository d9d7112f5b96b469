using System.Diagnostics;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>The `minivmm` command end to end: exit codes, messages, and the snapshot workflow.</summary>
public sealed class CliTests
{
    [KvmFact]
    public void Run_hello_prints_the_guest_line_and_exits_with_the_guest_status()
    {
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "64M");
        r.ExitCode.Should().Be(0, r.Stderr);
        r.Stdout.Should().Be("Hello from MiniVmm guest\n");
    }

    [KvmFact]
    public void Log_lines_go_to_stderr_one_per_message_and_respect_the_level()
    {
        var quiet = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "64M");
        quiet.Stderr.Should().BeEmpty("nothing reaches warning level on a clean boot");

        var chatty = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "64M", "--log-level", "debug");
        chatty.ExitCode.Should().Be(0, chatty.Stderr);
        chatty.Stdout.Should().Be("Hello from MiniVmm guest\n", "logs never mix with the serial console");
        var lines = chatty.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().NotBeEmpty();
        lines.Should().AllSatisfy(l => l.Should().MatchRegex(@"^\d\d:\d\d:\d\d\.\d{3} (dbug|info): [\w.]+\[\d+\] \S"));
    }

    [Fact]
    public void Missing_kernel_is_exit_120_with_a_clear_message()
    {
        var r = MinivmmProcess.Run("run", "--kernel", "/nonexistent/kernel.elf");
        r.ExitCode.Should().Be(120);
        r.Stderr.Should().Contain("does not exist");
    }

    [Fact]
    public void Bad_sizes_and_modes_are_exit_120()
    {
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "1M").ExitCode.Should().Be(120);
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "lots").ExitCode.Should().Be(120);
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--snapshot-to", "x", "--snapshot-mode", "magic").ExitCode.Should().Be(120);
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--snapshot-after", "1s").ExitCode.Should().Be(120);
        var notDuration = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--snapshot-to", "x", "--snapshot-mode", "dirty-log",
            "--snapshot-converge-timeout", "soon");
        notDuration.ExitCode.Should().Be(120);
        notDuration.Stderr.Should().Contain("--snapshot-converge-timeout");
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--snapshot-to", "x", "--snapshot-converge-timeout", "5s")
            .ExitCode.Should().Be(120, "the timeout only means something for dirty-log");
    }

    [KvmFact]
    public void Snapshot_verify_restore_round_trip_through_the_command_line()
    {
        string image = GuestFiles.TempPath("cli.mvs");
        var run = MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "256M", "--cmdline", "mb=32 sweeps=100000 report_ms=0",
            "--snapshot-to", image, "--snapshot-after", "300ms", "--exit-after-snapshot");
        run.ExitCode.Should().Be(0, run.Stderr);
        run.Stderr.Should().MatchRegex(@"snapshot \(write-tracking\): [1-9]\d* pages saved \(\d+\.\d MiB\), downtime \d+(\.\d+)? ms, protected window \d+(\.\d+)? ms, total \d+(\.\d+)? ms");

        var verify = MinivmmProcess.Run("snapshot", "verify", image);
        verify.ExitCode.Should().Be(0, verify.Stderr);
        MinivmmProcess.Run("snapshot", "inspect", image).Stdout.Should().Contain("write-tracking");

        var restored = MinivmmProcess.Run(TimeSpan.FromMinutes(3), "restore", image, "--serial", "none");
        restored.ExitCode.Should().Be(0, "the restored writer completes its sweeps and finds every page consistent: " + restored.Stderr);
        File.Delete(image);
    }

    [KvmFact]
    public void Guest_request_on_the_control_port_takes_the_snapshot()
    {
        string image = GuestFiles.TempPath("guest-request.mvs");
        var run = MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "128M", "--cmdline", "mb=16 sweeps=30000 snapshot_after=2 report_ms=0",
            "--snapshot-to", image, "--exit-after-snapshot", "--serial", "none");
        run.ExitCode.Should().Be(0, run.Stderr);
        MinivmmProcess.Run("snapshot", "verify", image).ExitCode.Should().Be(0);
        var restored = MinivmmProcess.Run(TimeSpan.FromMinutes(3), "restore", image, "--serial", "none");
        restored.ExitCode.Should().Be(0, restored.Stderr);
        File.Delete(image);
    }

    [KvmFact]
    public void Corrupt_and_truncated_snapshots_are_refused_by_verify_and_restore()
    {
        string image = GuestFiles.TempPath("bad.mvs");
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=8 sweeps=0 report_ms=0",
            "--snapshot-to", image, "--snapshot-after", "200ms", "--exit-after-snapshot").ExitCode.Should().Be(0);
        var bytes = File.ReadAllBytes(image);

        string truncated = GuestFiles.TempPath("truncated.mvs");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        string flipped = GuestFiles.TempPath("flipped.mvs");
        var copy = (byte[])bytes.Clone();
        copy[100] ^= 0x40; // inside the header
        File.WriteAllBytes(flipped, copy);

        string pageFlipped = GuestFiles.TempPath("page-flipped.mvs");
        copy = (byte[])bytes.Clone();
        long dataOffset;
        using (var file = MiniVmm.Snapshot.Format.SnapshotFile.Open(image)) dataOffset = file.RegionDataOffset(0);
        copy[dataOffset + (long)MiniVmm.Firmware.GuestAbi.BufferGpa + 8] ^= 0x01; // a byte of the writer's first buffer page
        File.WriteAllBytes(pageFlipped, copy);

        foreach (var bad in new[] { truncated, flipped, pageFlipped, GuestFiles.Hello })
        {
            var verify = MinivmmProcess.Run("snapshot", "verify", bad);
            verify.ExitCode.Should().Be(120);
            verify.Stderr.Should().StartWith("minivmm: ");
            var restore = MinivmmProcess.Run("restore", bad);
            restore.ExitCode.Should().Be(120);
            // Refused up front ("cannot restore"), or, for a damaged page, when the lazy restore reaches it: both as a
            // plain "minivmm:" line (not only a log line), with exit 120.
            restore.Stderr.Should().MatchRegex(@"(?m)^minivmm: (cannot restore|.*is corrupt)", "a damaged page is found when the lazy restore reaches it");
        }
        File.Delete(image); File.Delete(truncated); File.Delete(flipped); File.Delete(pageFlipped);
    }

    [KvmFact]
    public void Sigusr1_takes_a_snapshot_and_sigterm_stops_the_vm()
    {
        string image = GuestFiles.TempPath("usr1.mvs");
        using var p = MinivmmProcess.Start("run", "--kernel", GuestFiles.Writer, "--mem", "128M", "--cmdline", "mb=16 sweeps=0 report_ms=0",
            "--snapshot-to", image, "--serial", "none");
        var stderr = p.StandardError.ReadToEndAsync();
        Thread.Sleep(1000);
        Process.Start("kill", ["-USR1", p.Id.ToString()])!.WaitForExit();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(image) && DateTime.UtcNow < deadline) Thread.Sleep(50);
        File.Exists(image).Should().BeTrue("SIGUSR1 starts a snapshot");
        Thread.Sleep(200);
        Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
        p.WaitForExit(30000).Should().BeTrue();
        p.ExitCode.Should().Be(143, "128 + SIGTERM, as a shell reports it");
        MinivmmProcess.Run("snapshot", "verify", image).ExitCode.Should().Be(0);
        File.Delete(image);
    }
}
