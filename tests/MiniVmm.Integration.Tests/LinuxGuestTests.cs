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

    /// <remarks>
    /// One test, two boots and a restore: every Linux boot costs minutes of emulated kernel code here, and the CI run
    /// has a time limit, so the second boot both verifies the first one's disk and is the one snapshotted live.
    /// </remarks>
    [KvmFact]
    public void Linux_writes_a_disk_that_the_next_boot_verifies_and_a_live_snapshot_of_that_boot_restores_lazily_with_ram_and_disk_as_at_the_freeze()
    {
        string image = NewImage();
        string snapshot = GuestFiles.TempPath("linux.mvs");
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

            // The next boot checks the data against the record, then writes 2 rounds to RAM and disk, asks for a
            // snapshot through the control port and writes 2 more while the live snapshot runs; the run ends when the
            // snapshot is complete.
            var second = LinuxGuest.Run("blk-check,snapshot,no-such-check rounds=4", "--drive", $"file={image}", "--rng",
                "--snapshot-to", snapshot, "--exit-after-snapshot");
            second.ExitCode.Should().Be(0, second.Stdout + second.Stderr);
            second.Stdout.Should().Contain($"selftest: blk-check pass: {kib} KiB sha256 {sha}")
                .And.Contain("selftest: snapshot: requesting after 2 rounds");

            // The restored copy resumes inside /init at the freeze (rounds 1-2 written), writes rounds 3-4 and
            // verifies all 4 in RAM and on its drive: both came back as they were at the freeze. The second boot went
            // on writing while the snapshot ran, so its drive is put back from the snapshot's copy. Then comes a check
            // /init does not know: the checks' status (2, unknown check) is MiniVmm's exit status.
            var restored = MinivmmProcess.Run(LinuxGuest.BootTimeout, "restore", snapshot, "--memory", "lazy", "--drive-from-snapshot");
            restored.Stdout.Should().Contain("selftest: snapshot pass: 4 rounds intact in RAM and on disk")
                .And.Contain("selftest: no-such-check fail: unknown check").And.Contain("selftest: result 2");
            restored.Stdout.Should().NotContain("init reached", "the restored guest resumes inside /init, it does not boot again");
            restored.ExitCode.Should().Be(2, restored.Stdout + restored.Stderr);
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
