using System.Diagnostics;
using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// The `minivmm` command end to end: `run --qmp`, `snapshot --qmp` (progress and exit status), `monitor`. Runs the
/// built CLI (the solution build puts it next to the sources), so it needs `dotnet build MiniVmm.sln` first.
/// </summary>
public sealed class QmpCliTests
{
    [KvmFact]
    public void Snapshot_client_reports_progress_and_outcome_and_quit_exits_zero()
    {
        string socket = Path.Combine(Path.GetTempPath(), $"mvc-{Guid.NewGuid():N}"[..20] + ".sock");
        string image = GuestFiles.TempPath("cli.mvs");
        using var vm = Start("run", "--kernel", GuestFiles.Writer, "--cmdline", "mb=64 sweeps=20000 report_ms=0", "--mem", "256M",
            "--serial", "none", "--qmp", $"unix:{socket},server,nowait");
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!File.Exists(socket))
            {
                vm.HasExited.Should().BeFalse("minivmm run should be serving QMP");
                if (DateTime.UtcNow > deadline) throw new TimeoutException("no QMP socket");
                Thread.Sleep(20);
            }

            var (code, stdout, stderr) = Cli("snapshot", "--qmp", socket, "--to", image, "--mode", "write-tracking", "--max-bandwidth", "1024");
            code.Should().Be(0, stderr);
            stdout.Should().MatchRegex(@"snapshot completed: [1-9]\d* pages saved of 65536 \(\d+\.\d MiB\), downtime \d+(\.\d+)? ms, total \d+ ms \(wall \d+ ms\)", "saved pages and the exact downtime, as the VM reports them");
            stderr.Should().Contain("snapshot: ", "not on a terminal, progress comes as plain lines");

            var json = Cli("snapshot", "--qmp", socket, "--to", image + ".json", "--json");
            json.Code.Should().Be(0, json.Stderr);
            var outcome = System.Text.Json.Nodes.JsonNode.Parse(json.Stdout)!.AsObject();
            JsonOutputTests.AllKeysKebab(outcome);
            ((string?)outcome["status"]).Should().Be("completed");
            ((long?)outcome["pages-saved"]).Should().BePositive();
            ((long?)outcome["pages-total"]).Should().Be(65536);
            File.Delete(image + ".json");

            var failed = Cli("snapshot", "--qmp", "unix:" + socket, "--to", "exec:exit 4", "--mode", "dirty-log");
            failed.Code.Should().Be(1, "a failed snapshot fails the client");
            failed.Stderr.Should().Contain("snapshot failed");

            Cli("snapshot", "--qmp", socket + ".missing", "--to", image + ".2").Code.Should().Be(120);

            var monitor = Cli(["monitor", "--qmp", socket], stdin: "info status\nquit\n");
            monitor.Stdout.Should().Contain("VM status: running");
            vm.WaitForExit(30_000).Should().BeTrue("quit stops the VM");
            vm.ExitCode.Should().Be(0, "quit exits 0, as QEMU does");
        }
        finally
        {
            if (!vm.HasExited) vm.Kill();
        }

        var (restored, serial) = SnapshotHarness.Restore(image);
        using (restored)
        {
            restored.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
        }
        File.Delete(image);
    }

    [KvmFact]
    public void Server_wait_holds_the_guest_until_each_waiting_socket_has_its_own_client()
    {
        string first = Path.Combine(Path.GetTempPath(), $"mvw-{Guid.NewGuid():N}"[..20] + ".sock");
        string second = Path.Combine(Path.GetTempPath(), $"mvx-{Guid.NewGuid():N}"[..20] + ".sock");
        string other = Path.Combine(Path.GetTempPath(), $"mvo-{Guid.NewGuid():N}"[..20] + ".sock");
        string serial = GuestFiles.TempPath("wait-serial.txt");
        using var vm = MinivmmProcess.Start("run", "--kernel", GuestFiles.Hello, "--mem", "64", "--serial", "file:" + serial,
            "--qmp", $"unix:{first},server", "--qmp", $"unix:{other},server,nowait", "--qmp", $"unix:{second},server,wait=on");
        var err = new StderrLines(vm);
        var clients = new List<QmpTestClient>();
        try
        {
            err.WaitFor("waiting for a QMP client").Should().BeTrue(err.Text);
            File.Exists(other).Should().BeTrue("every socket listens before the wait");
            // A client of the nowait socket, then of one waiting socket: QEMU still holds the start for the other.
            clients.Add(new QmpTestClient(other));
            clients.Add(new QmpTestClient(first));
            vm.WaitForExit(1500).Should().BeFalse("the second waiting socket has no client yet");
            File.ReadAllText(serial).Should().BeEmpty("QEMU's server,wait: the guest has not started");
            clients.Add(new QmpTestClient(second)); // connecting is enough; hello exits at once, maybe before a greeting is read
            vm.WaitForExit(60_000).Should().BeTrue("each waiting socket has its client, so the guest ran and exited");
            vm.ExitCode.Should().Be(0, err.Text);
            File.ReadAllText(serial).Should().Be("Hello from MiniVmm guest\n");
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
            if (!vm.HasExited) vm.Kill();
            File.Delete(serial);
        }
    }

    private static Process Start(params string[] args)
    {
        var p = MinivmmProcess.Start(args);
        p.BeginErrorReadLine(); // drained so the VM never blocks on a full pipe
        p.BeginOutputReadLine();
        return p;
    }

    private static (int Code, string Stdout, string Stderr) Cli(params string[] args)
    {
        var r = MinivmmProcess.Run(TimeSpan.FromMinutes(2), args);
        return (r.ExitCode, r.Stdout, r.Stderr);
    }

    /// <summary>Runs the CLI with <paramref name="stdin"/> as its input (the interactive monitor).</summary>
    private static (int Code, string Stdout, string Stderr) Cli(string[] args, string stdin)
    {
        using var p = MinivmmProcess.Start(args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(120_000))
        {
            p.Kill();
            throw new TimeoutException("minivmm " + string.Join(' ', args) + " did not finish");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
