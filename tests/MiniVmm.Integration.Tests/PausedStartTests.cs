using System.Diagnostics;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>`run --paused` / `restore --paused` (QEMU's -S): the VM is built and its monitor answers, the guest runs only after `cont`.</summary>
public sealed class PausedStartTests
{
    [KvmFact]
    public void Run_paused_answers_the_monitor_and_boots_on_cont()
    {
        string socket = SocketPath();
        string serial = GuestFiles.TempPath("paused-serial.txt");
        using var vm = StartDrained("run", "--kernel", GuestFiles.Hello, "--mem", "64", "--serial", "file:" + serial, "--paused", "--qmp", socket);
        try
        {
            using var qmp = Connect(vm, socket);
            var status = qmp.Return("query-status");
            ((string?)status["status"]).Should().Be("prelaunch");
            ((bool?)status["running"]).Should().BeFalse();
            qmp.Hmp("info status").Should().Be("VM status: paused (prelaunch)\n");
            File.ReadAllText(serial).Should().BeEmpty("the guest has not executed an instruction");

            qmp.Return("cont");
            vm.WaitForExit(60_000).Should().BeTrue("cont starts the guest, which exits");
            vm.ExitCode.Should().Be(0);
            File.ReadAllText(serial).Should().Be("Hello from MiniVmm guest\n");
        }
        finally
        {
            if (!vm.HasExited) vm.Kill();
            File.Delete(serial);
        }
    }

    [KvmFact]
    public void Restore_paused_holds_the_restored_guest_until_cont()
    {
        string image = GuestFiles.TempPath("paused.mvs");
        var run = MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=8 sweeps=20000 report_ms=0",
            "--snapshot-to", image, "--snapshot-after", "200ms", "--exit-after-snapshot", "--serial", "none");
        run.ExitCode.Should().Be(0, run.Stderr);

        string socket = SocketPath();
        using var vm = StartDrained("restore", image, "--serial", "none", "--paused", "--qmp", socket);
        try
        {
            using var qmp = Connect(vm, socket);
            ((string?)qmp.Return("query-status")["status"]).Should().Be("prelaunch");
            qmp.Return("cont");
            qmp.WaitForEvent("RESUME");
            vm.WaitForExit(180_000).Should().BeTrue("the restored writer finishes its sweeps");
            vm.ExitCode.Should().Be(0, "the writer found every page consistent after the paused restore");
        }
        finally
        {
            if (!vm.HasExited) vm.Kill();
            File.Delete(image);
        }
    }

    [Fact]
    public void Paused_without_a_monitor_is_a_usage_error()
    {
        // A real kernel, so only the --paused check can make this exit 120 (a missing kernel would too); the guest never ran.
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--paused");
        r.ExitCode.Should().Be(120, "nothing could ever continue it");
        r.Stdout.Should().BeEmpty("the guest never ran");
    }

    internal static string SocketPath() => Path.Combine(Path.GetTempPath(), $"mvp-{Guid.NewGuid():N}"[..20] + ".sock");

    internal static Process StartDrained(params string[] args)
    {
        var p = MinivmmProcess.Start(args);
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    /// <summary>Waits (bounded) for the socket to appear, then connects and negotiates.</summary>
    internal static QmpTestClient Connect(Process vm, string socket)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!File.Exists(socket))
        {
            vm.HasExited.Should().BeFalse("minivmm should be serving QMP");
            if (DateTime.UtcNow > deadline) throw new TimeoutException("no QMP socket at " + socket);
            Thread.Sleep(20);
        }
        return QmpTestClient.Negotiated(socket);
    }
}
