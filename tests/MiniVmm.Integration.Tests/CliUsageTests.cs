using System.Diagnostics;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// What `minivmm` does with a bad command line, units and signals: exit 120 with one line and a hint (no help dump,
/// no .NET type names), `--mem` in MiB without a unit, and SIGINT/SIGTERM as 130/143 however it was started.
/// </summary>
public sealed class CliUsageTests
{
    [Theory]
    [InlineData("run")]                                                // no --kernel
    [InlineData("run", "--kernel", "x", "--cpus", "abc")]
    [InlineData("run", "--kernel", "x", "--cpus", "2147483648")]
    [InlineData("run", "--kernel", "x", "--cpus", "0")]
    [InlineData("run", "--kernel", "x", "--no-such-option")]
    [InlineData("run", "--kernel", "x", "--mem", "lots")]
    [InlineData("restore")]                                            // no FILE
    [InlineData("restore", "--record-working-set", "soon", "x.mvs")]
    [InlineData("frobnicate")]
    [InlineData]                                                       // no subcommand
    public void Usage_errors_exit_120_with_one_line_and_a_hint(params string[] args)
    {
        var r = MinivmmProcess.Run(args);
        r.ExitCode.Should().Be(120, r.Stderr);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount(2, r.Stderr);
        lines[0].Should().StartWith("minivmm: ");
        lines[1].Should().MatchRegex(@"^Try 'minivmm( \w+)? --help' for more information\.$");
        r.Stderr.Should().NotContain("System.", "no .NET type names");
        r.Stdout.Should().BeEmpty("no help text");
    }

    [Fact]
    public void Errors_quote_what_was_typed()
    {
        MinivmmProcess.Run("run", "--kernel", "x", "--cpus", "2147483648").Stderr.Should().Contain("'2147483648'");
        var small = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "1M");
        small.ExitCode.Should().Be(120);
        small.Stderr.Should().Contain("'1M'").And.NotContain("1048576");
    }

    [KvmFact]
    public void A_plain_mem_number_is_MiB_as_in_qemu()
    {
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "64", "--log-level", "information");
        r.ExitCode.Should().Be(0, r.Stderr);
        r.Stderr.Should().Contain("64 MiB");
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "64B").ExitCode.Should().Be(120, "64 bytes is too small");
    }

    [KvmFact]
    public void Record_working_set_before_the_file_name_takes_the_default_duration()
    {
        string image = GuestFiles.TempPath("ws.mvs");
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=8 sweeps=0 report_ms=0",
            "--snapshot-to", image, "--snapshot-after", "200ms", "--exit-after-snapshot", "--serial", "none").ExitCode.Should().Be(0);
        using (var p = MinivmmProcess.Start("restore", "--record-working-set", image, "--serial", "none"))
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!File.Exists(image + ".ws") && DateTime.UtcNow < deadline && !p.HasExited) Thread.Sleep(50);
            File.Exists(image + ".ws").Should().BeTrue("the option took its default duration and the file name stayed the FILE");
            p.Kill();
            p.WaitForExit();
        }
        File.Delete(image); File.Delete(image + ".ws");
    }

    [KvmFact]
    public void Sigint_stops_a_vm_started_with_sigint_ignored_as_a_background_job_is()
    {
        // `trap '' INT` is what a shell does for `cmd &`: the process starts with SIGINT set to SIG_IGN.
        using var p = MinivmmProcess.StartThroughShell("trap '' INT;", "run", "--kernel", GuestFiles.Writer, "--mem", "64M",
            "--cmdline", "mb=8 sweeps=0 report_ms=0", "--serial", "none", "--log-level", "information");
        var stderr = new StderrLines(p);
        stderr.WaitFor("vCPUs started").Should().BeTrue(stderr.Text);
        Process.Start("kill", ["-INT", p.Id.ToString()])!.WaitForExit();
        p.WaitForExit(30000).Should().BeTrue("SIGINT reaches minivmm although it was started ignored");
        p.ExitCode.Should().Be(130);
    }

    [KvmFact]
    public void Sigint_while_the_vm_runs_is_exit_130_and_an_information_line()
    {
        using var p = MinivmmProcess.Start("run", "--kernel", GuestFiles.Writer, "--mem", "64M",
            "--cmdline", "mb=8 sweeps=0 report_ms=0", "--serial", "none", "--log-level", "information");
        var stderr = new StderrLines(p);
        stderr.WaitFor("vCPUs started").Should().BeTrue(stderr.Text);
        Process.Start("kill", ["-INT", p.Id.ToString()])!.WaitForExit();
        p.WaitForExit(30000).Should().BeTrue();
        p.ExitCode.Should().Be(130);
        stderr.All().Should().NotContain("warn:", "a requested stop is not a problem").And.NotContain("HostRequest");
    }

    [KvmTheory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public void A_signal_anywhere_in_the_start_up_ends_with_its_status_and_no_stack_trace(string signal, int status)
    {
        // From the runtime's start through parsing, building the VM (RAM, vCPUs, devices) to the first guest
        // instruction: wherever the signal lands, the same status and no .NET trace.
        foreach (int delayMs in new[] { 0, 30, 100, 200, 350, 600 })
        {
            using var p = MinivmmProcess.Start("run", "--kernel", GuestFiles.Writer, "--mem", "256M", "--cpus", "2",
                "--cmdline", "mb=8 cpus=2 sweeps=0 report_ms=0", "--serial", "none", "--rng");
            var stderr = new StderrLines(p);
            Thread.Sleep(delayMs);
            Process.Start("kill", [$"-{signal}", p.Id.ToString()])!.WaitForExit();
            p.WaitForExit(30000).Should().BeTrue($"SIG{signal} after {delayMs} ms ends the process");
            p.ExitCode.Should().Be(status, $"SIG{signal} after {delayMs} ms: {stderr.Text}");
            stderr.All().Should().NotContain("   at ", $"no stack trace (SIG{signal} after {delayMs} ms)").And.NotContain("Unhandled");
        }
    }
}
