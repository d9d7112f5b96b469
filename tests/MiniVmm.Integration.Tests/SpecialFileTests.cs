using System.Diagnostics;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Devices, FIFOs and directories where MiniVmm expects a regular file: a clear error (exit 120), never a hang, an
/// endless read or a crash; and serial output errors never cost the guest's exit status.
/// </summary>
public sealed class SpecialFileTests
{
    private static string NewFifo()
    {
        string path = GuestFiles.TempPath("fifo");
        using var p = Process.Start("mkfifo", [path])!;
        p.WaitForExit();
        p.ExitCode.Should().Be(0);
        return path;
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/null")]
    [InlineData("/tmp")]
    public void A_device_or_directory_as_the_kernel_is_refused(string kernel)
    {
        var r = MinivmmProcess.Run("run", "--kernel", kernel, "--mem", "64M");
        r.ExitCode.Should().Be(120, r.Stderr);
        r.Stderr.Should().Contain("not a regular file");
    }

    [Fact]
    public void A_fifo_as_the_kernel_is_refused_without_blocking()
    {
        string fifo = NewFifo();
        var r = MinivmmProcess.Run(TimeSpan.FromSeconds(60), "run", "--kernel", fifo, "--mem", "64M");
        r.ExitCode.Should().Be(120, r.Stderr);
        r.Stderr.Should().Contain("a FIFO");
        File.Delete(fifo);
    }

    [Theory]
    [InlineData("verify")]
    [InlineData("inspect")]
    [InlineData("convert")]
    [InlineData("restore")]
    public void A_fifo_as_the_snapshot_file_is_refused_without_blocking(string command)
    {
        string fifo = NewFifo();
        string[] args = command switch
        {
            "restore" => ["restore", fifo],
            "convert" => ["snapshot", "convert", fifo, GuestFiles.TempPath("out.mvs")],
            _ => ["snapshot", command, fifo],
        };
        var r = MinivmmProcess.Run(TimeSpan.FromSeconds(60), args);
        r.ExitCode.Should().Be(120, r.Stderr);
        r.Stderr.Should().Contain("a FIFO");
        File.Delete(fifo);
    }

    [KvmFact]
    public void Serial_output_to_a_full_device_keeps_the_guest_status()
    {
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "64M", "--serial", "file:/dev/full");
        r.ExitCode.Should().Be(0, "the guest exited 0; a failing serial output must not change that: " + r.Stderr);
        r.Stderr.Should().NotContain("Unhandled");
    }

    [KvmFact]
    public void Serial_output_to_a_full_file_system_keeps_the_guest_status()
    {
        string mount = Path.Combine(Path.GetTempPath(), $"minivmm-serial-full-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        Sh($"mount -t tmpfs -o size=64k tmpfs {mount} && dd if=/dev/zero of={mount}/fill bs=4k 2>/dev/null; true").Should().Be(0);
        try
        {
            var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--mem", "64M", "--serial", $"file:{mount}/serial.log");
            r.ExitCode.Should().Be(0, r.Stderr);
            r.Stderr.Should().NotContain("Unhandled");
        }
        finally
        {
            Sh($"umount {mount}");
            Directory.Delete(mount);
        }
    }

    [Fact]
    public void A_fifo_as_the_serial_file_is_refused_without_blocking()
    {
        string fifo = NewFifo();
        var r = MinivmmProcess.Run(TimeSpan.FromSeconds(60), "run", "--kernel", GuestFiles.Hello, "--mem", "64M", "--serial", $"file:{fifo}");
        r.ExitCode.Should().Be(120, r.Stderr);
        r.Stderr.Should().Contain("a FIFO");
        File.Delete(fifo);
    }

    private static int Sh(string command)
    {
        using var p = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardError = true })!;
        p.WaitForExit();
        return p.ExitCode;
    }
}
