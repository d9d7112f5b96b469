using System.Security.Cryptography;
using System.Text;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Linux's own virtio drivers as the independent client of MiniVmm's devices: the Linux test guest boots to /init,
/// runs its scripted checks and exits with their status; the host checks what the guest wrote. Each boot takes
/// minutes on a host that emulates kernel-mode code, so the checks share boots.
/// </summary>
public sealed class LinuxGuestTests
{
    private const int DataKib = 64;

    private static string NewImage()
    {
        string path = GuestFiles.TempPath("linux-disk.img");
        using (var f = File.Create(path)) f.SetLength(2 << 20);
        return path;
    }

    /// <summary>The guest's sector-0 record: "minivmm-selftest KIB SHA256".</summary>
    private static (int Kib, string Sha256) Record(string image)
    {
        var sector = new byte[512];
        using (var f = File.OpenRead(image)) f.ReadExactly(sector);
        string[] words = Encoding.ASCII.GetString(sector).Split('\n')[0].Split(' ');
        words.Should().HaveCount(3).And.StartWith("minivmm-selftest");
        return (int.Parse(words[1]), words[2]);
    }

    private static string DataSha256(string image, int kib)
    {
        var data = new byte[kib * 1024];
        using (var f = File.OpenRead(image)) { f.Seek(4096, SeekOrigin.Begin); f.ReadExactly(data); }
        return Convert.ToHexStringLower(SHA256.HashData(data));
    }

    [KvmFact]
    public void Linux_boots_to_init_reads_the_rng_writes_a_disk_that_the_next_boot_verifies_and_exits_with_the_checks_status()
    {
        string image = NewImage();
        try
        {
            var first = LinuxGuest.Run($"boot,rng,blk-write,blk-speed blkdata={DataKib} blkspeed=256", "--drive", $"file={image}", "--rng");
            first.ExitCode.Should().Be(0, first.Stdout + first.Stderr);
            first.Stdout.Should().Contain("selftest: boot pass: Linux version 6.1")
                .And.Contain("selftest: rng pass: virtio_rng")
                .And.Contain("selftest: blk-write pass").And.Contain("selftest: blk-speed pass: 256 KiB write")
                .And.Contain("selftest: result 0");
            var (kib, sha) = Record(image);
            kib.Should().Be(DataKib);
            DataSha256(image, kib).Should().Be(sha, "the host reads back what the guest's virtio-blk writes put on the image");

            // The next boot checks the data against the record, then runs a check /init does not know: the checks'
            // status (2, unknown check) is MiniVmm's exit status.
            var second = LinuxGuest.Run("blk-check,no-such-check", "--drive", $"file={image}", "--rng");
            second.Stdout.Should().Contain($"selftest: blk-check pass: {kib} KiB sha256 {sha}")
                .And.Contain("selftest: no-such-check fail: unknown check").And.Contain("selftest: result 2");
            second.ExitCode.Should().Be(2, second.Stdout + second.Stderr);
        }
        finally { File.Delete(image); }
    }

    [KvmFact]
    public void A_live_snapshot_of_linux_writing_to_ram_and_disk_restores_lazily_and_its_self_check_passes()
    {
        string image = NewImage();
        string snapshot = GuestFiles.TempPath("linux.mvs");
        try
        {
            // /init writes 4 rounds, asks for the snapshot through the control port, then writes 4 more while the
            // live snapshot runs; the run ends when the snapshot is complete.
            var run = LinuxGuest.Run("snapshot rounds=8", "--drive", $"file={image}", "--snapshot-to", snapshot, "--exit-after-snapshot");
            run.ExitCode.Should().Be(0, run.Stdout + run.Stderr);
            run.Stdout.Should().Contain("selftest: snapshot: requesting after 4 rounds");

            // The restored copy resumes inside /init at the freeze (rounds 1-4 written), writes rounds 5-8 and
            // verifies all 8 in RAM and on its drive: both came back as they were at the freeze. The first run went on
            // writing rounds while the snapshot ran, so its drive is put back from the snapshot's copy.
            var restored = MinivmmProcess.Run(LinuxGuest.BootTimeout, "restore", snapshot, "--memory", "lazy", "--drive-from-snapshot");
            restored.ExitCode.Should().Be(0, restored.Stdout + restored.Stderr);
            restored.Stdout.Should().Contain("selftest: snapshot pass: 8 rounds intact in RAM and on disk")
                .And.Contain("selftest: result 0");
            restored.Stdout.Should().NotContain("init reached", "the restored guest resumes inside /init, it does not boot again");
        }
        finally
        {
            File.Delete(image);
            foreach (string f in Directory.GetFiles(Path.GetDirectoryName(snapshot)!, Path.GetFileName(snapshot) + "*")) File.Delete(f);
        }
    }

    [HardwareVirtualizationFact]
    public void With_hardware_virtualization_the_unpatched_debian_kernel_boots_to_init_and_exits_with_its_status()
    {
        // Debian's stock bzImage, none of this host's workarounds on its command line, the test initramfs: the boot
        // protocol, the ACPI tables and the console are all a distribution kernel needs to reach /init.
        var r = MinivmmProcess.Run(TimeSpan.FromMinutes(5), "run", "--kernel", DebianKernel.Path, "--initrd", LinuxGuest.Initrd,
            "--mem", "512M", "--cmdline", "panic=-1 selftest=boot");
        r.ExitCode.Should().Be(0, r.Stdout + r.Stderr);
        r.Stdout.Should().Contain("selftest: boot pass: Linux version 6.1").And.Contain("selftest: result 0");
    }
}
