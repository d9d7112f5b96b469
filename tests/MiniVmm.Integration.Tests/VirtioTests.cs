using System.Buffers.Binary;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// virtio-blk and virtio-rng end to end: the vblk guest drives them through virtio-mmio (ioeventfd kicks, polled used
/// rings) and reports what it observed; the host checks the image afterwards.
/// </summary>
public sealed class VirtioTests
{
    private static string NewImage(int kib = 256)
    {
        string path = GuestFiles.TempPath("disk.img");
        using (var f = File.Create(path)) f.SetLength(kib * 1024L);
        return path;
    }

    /// <summary>Word <paramref name="word"/> of sector <paramref name="sector"/> as the guest stamps it in generation g.</summary>
    private static ulong Stamp(ulong g, ulong sector, ulong word) => g << 32 | sector << 8 | word;

    private static ulong ImageWord(string path, int sector, int word)
    {
        var bytes = File.ReadAllBytes(path);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(sector * 512 + word * 8));
    }

    [KvmFact]
    public void The_guest_writes_a_generation_that_the_next_boot_finds_and_the_host_sees()
    {
        string image = NewImage();
        var first = MinivmmProcess.Run("run", "--kernel", GuestFiles.Virtio, "--mem", "64M", "--drive", $"file={image}", "--rng");
        first.ExitCode.Should().Be(0, first.Stdout + first.Stderr);
        first.Stdout.Should().Contain("vblk: found generation 0").And.Contain("vblk: wrote and verified generation 1")
            .And.Contain("vrng: 64 random bytes").And.Contain("vblk: done failures=0");
        first.Stderr.Should().BeEmpty("no warning: the ioeventfd and irqfd were set up and the guest broke no rule");
        ImageWord(image, 5, 3).Should().Be(Stamp(1, 5, 3));

        var second = MinivmmProcess.Run("run", "--kernel", GuestFiles.Virtio, "--mem", "64M", "--drive", $"file={image},cache=none");
        second.ExitCode.Should().Be(0, second.Stdout + second.Stderr);
        second.Stdout.Should().Contain("vblk: found generation 1").And.Contain("vblk: wrote and verified generation 2");
        ImageWord(image, 63, 63).Should().Be(Stamp(2, 63, 63));
        ImageWord(image, 64, 0).Should().Be(0, "the guest checks 64 sectors and writes nothing past them");
        File.Delete(image);
    }

    [KvmFact]
    public void A_read_only_drive_refuses_the_guests_write_and_stays_unchanged()
    {
        string image = NewImage();
        var bytes = new byte[256 * 1024];
        for (int s = 0; s < 64; s++)
            for (int w = 0; w < 64; w++)
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(s * 512 + w * 8), Stamp(7, (ulong)s, (ulong)w));
        File.WriteAllBytes(image, bytes);
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Virtio, "--mem", "64M", "--drive", $"file={image},readonly=on");
        r.ExitCode.Should().Be(0, r.Stdout + r.Stderr);
        r.Stdout.Should().Contain("vblk: found generation 7").And.Contain("vblk: read-only disk refused a write");
        File.ReadAllBytes(image).Should().Equal(bytes);
        File.Delete(image);
    }

    [KvmFact]
    public void A_second_minivmm_on_the_same_writable_image_is_refused()
    {
        string image = NewImage();
        using var holder = MinivmmProcess.Start("run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=4 sweeps=0 report_ms=0",
            "--serial", "none", "--drive", $"file={image}", "--log-level", "information");
        try
        {
            holder.StandardInput.Close();
            // The image is locked while the VM is built; "vCPUs started" comes after that.
            var started = Task.Run(() =>
            {
                while (holder.StandardError.ReadLine() is { } line)
                    if (line.Contains("vCPUs started", StringComparison.Ordinal)) return true;
                return false;
            });
            started.Wait(TimeSpan.FromMinutes(2)).Should().BeTrue("the first VM starts");
            started.Result.Should().BeTrue("the first VM starts");
            var second = MinivmmProcess.Run("run", "--kernel", GuestFiles.Virtio, "--mem", "64M", "--drive", $"file={image}");
            second.ExitCode.Should().Be(120, second.Stderr);
            second.Stderr.Should().Contain(image, "the refusal names the image");
            holder.HasExited.Should().BeFalse("the first VM keeps running");
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
            holder.WaitForExit();
            File.Delete(image);
        }
    }

    [KvmFact] // the image is opened after KVM is
    public void Missing_image_and_bad_drive_options_are_exit_120()
    {
        var missing = MinivmmProcess.Run("run", "--kernel", GuestFiles.Virtio, "--drive", "file=/nonexistent/disk.img");
        missing.ExitCode.Should().Be(120);
        missing.Stderr.Should().Contain("/nonexistent/disk.img").And.Contain("does not exist");
        var bad = MinivmmProcess.Run("run", "--kernel", GuestFiles.Virtio, "--drive", "file=x.img,cache=unsafe");
        bad.ExitCode.Should().Be(120);
        bad.Stderr.Should().Contain("cache=unsafe");
    }

    [KvmFact]
    public void A_snapshot_taken_during_disk_io_restores_a_live_device_that_finishes_the_guests_reads()
    {
        string image = NewImage();
        string snapshot = GuestFiles.TempPath("vblk.mvs");
        var run = MinivmmProcess.Run("run", "--kernel", GuestFiles.Virtio, "--mem", "64M", "--cmdline", "snapshot=1",
            "--drive", $"file={image}", "--rng", "--snapshot-to", snapshot, "--exit-after-snapshot");
        run.ExitCode.Should().Be(0, run.Stdout + run.Stderr);
        run.Stdout.Should().Contain("vblk: wrote and verified generation 1");

        var restored = MinivmmProcess.Run("restore", snapshot);
        restored.ExitCode.Should().Be(0, restored.Stdout + restored.Stderr);
        restored.Stdout.Should().Contain("vblk: after the snapshot request, generation 1 verified again")
            .And.Contain("vrng: 64 random bytes").And.Contain("vblk: done failures=0");
        restored.Stdout.Should().NotContain("found generation", "the restored guest resumes mid-run, it does not boot again");

        File.Delete(image);
        var noImage = MinivmmProcess.Run("restore", snapshot);
        noImage.ExitCode.Should().Be(120, "the snapshot's drive is gone");
        noImage.Stderr.Should().Contain(image);
        File.Delete(snapshot);
    }
}
