using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// A live snapshot of a VM with a writable drive captures the drive as of the freeze. The proof is the vblk guest's
/// writer mode: it keeps writing generation-stamped random blocks and keeps, in RAM, the generation each block holds;
/// every read is checked against that table. A restored VM whose disk is from another instant than its RAM fails those
/// reads (the negative control shows it does).
/// </summary>
public sealed class DriveSnapshotTests
{
    /// <summary>About 3-6 s of writes at this host's speed; the snapshot is asked for after 300 of them.</summary>
    private const string WriterArgs = "writer=3000 snapat=300";

    private static string NewImage(long bytes = 4 << 20)
    {
        string path = GuestFiles.TempPath("disk.img");
        using (var f = File.Create(path)) f.SetLength(bytes);
        return path;
    }

    private static void Cleanup(params string[] paths)
    {
        foreach (string p in paths)
            foreach (string f in new[] { p, p + ".drive0", p + ".drive0.partial", p + ".partial" })
                File.Delete(f);
    }

    private static MinivmmProcess.Result RunWriterWithSnapshot(string image, string snapshot, string mode, string args = WriterArgs) =>
        MinivmmProcess.Run(TimeSpan.FromMinutes(3), "run", "--kernel", GuestFiles.Virtio, "--mem", "64M", "--cmdline", args,
            "--drive", $"file={image}", "--snapshot-to", snapshot, "--snapshot-mode", mode, "--exit-after-snapshot");

    private static void WriterPassed(MinivmmProcess.Result r, string what)
    {
        r.ExitCode.Should().Be(0, $"{what}: {r.Stdout}{r.Stderr}");
        r.Stdout.Should().Contain("vdisk: writer done writes=3000, final check of 1024 blocks against the table, failures=0", what)
            .And.NotContain("FAIL", what)
            .And.NotContain("newest generation found", $"{what}: the restored writer continues mid-run, it does not start again");
    }

    [KvmTheory]
    [InlineData("write-tracking")]
    [InlineData("stop-copy")]
    [InlineData("dirty-log")]
    public void A_snapshot_taken_while_the_writer_runs_restores_with_disk_and_ram_that_agree(string mode)
    {
        string image = NewImage();
        string snapshot = GuestFiles.TempPath("drive.mvs");
        try
        {
            var run = RunWriterWithSnapshot(image, snapshot, mode);
            run.ExitCode.Should().Be(0, run.Stdout + run.Stderr);
            run.Stderr.Should().Contain($"snapshot ({mode}):").And.Contain("drives ");
            File.Exists(snapshot + ".drive0").Should().BeTrue("the drive's content at the freeze is a file beside the snapshot");
            run.Stdout.Should().NotContain("writer done", "the VM stopped after the snapshot, mid-run");

            // The original VM wrote on after the freeze: its drive is no longer the snapshot's.
            var refused = MinivmmProcess.Run("restore", snapshot);
            refused.ExitCode.Should().Be(120, refused.Stderr);
            refused.Stderr.Should().Contain("changed since the snapshot").And.Contain("--drive-from-snapshot");

            var inspect = MinivmmProcess.Run("snapshot", "inspect", "--json", snapshot);
            inspect.ExitCode.Should().Be(0, inspect.Stderr);
            var drive = JsonNode.Parse(inspect.Stdout)!["drives"]![0]!;
            drive["path"]!.GetValue<string>().Should().Be(image);
            drive["captured"]!["file"]!.GetValue<string>().Should().Be(Path.GetFileName(snapshot) + ".drive0");
            drive["captured"]!["copy-present"]!.GetValue<bool>().Should().BeTrue();

            foreach (string memory in new[] { "eager", "lazy" })
                WriterPassed(MinivmmProcess.Run(TimeSpan.FromMinutes(3), "restore", snapshot, "--memory", memory, "--drive-from-snapshot"), $"{mode}, {memory} restore");
        }
        finally
        {
            Cleanup(snapshot);
            File.Delete(image);
        }
    }

    [KvmFact]
    public void A_restore_onto_another_image_writes_the_snapshots_copy_there_and_leaves_the_recorded_drive_alone()
    {
        string image = NewImage();
        string other = NewImage();
        string snapshot = GuestFiles.TempPath("drive.mvs");
        try
        {
            RunWriterWithSnapshot(image, snapshot, "write-tracking").ExitCode.Should().Be(0);
            byte[] recordedAfter = File.ReadAllBytes(image);
            var refused = MinivmmProcess.Run("restore", snapshot, "--drive", other);
            refused.ExitCode.Should().Be(120, "the other image does not hold the captured content either");
            WriterPassed(MinivmmProcess.Run(TimeSpan.FromMinutes(3), "restore", snapshot, "--drive", other, "--drive-from-snapshot"), "restore onto another image");
            File.ReadAllBytes(image).Should().Equal(recordedAfter, "the recorded drive was not touched");
        }
        finally
        {
            Cleanup(snapshot);
            File.Delete(image);
            File.Delete(other);
        }
    }

    [KvmFact]
    public void The_negative_control_a_restore_onto_the_drive_as_it_is_now_is_caught_by_the_writer()
    {
        string image = NewImage();
        string snapshot = GuestFiles.TempPath("drive.mvs");
        try
        {
            RunWriterWithSnapshot(image, snapshot, "write-tracking").ExitCode.Should().Be(0);
            // The drive moved on after the freeze; RAM is the freeze's. Skipping the pairing check must break the writer.
            var (restored, serial) = SnapshotHarness.Restore(snapshot, options: new RestoreOptions { UnsafeSkipDriveCheck = true });
            using (restored)
            {
                var exit = restored.WaitForExit(TimeSpan.FromMinutes(3));
                exit.Should().Be(new VmExitStatus(VmStopReason.GuestExit, 1), serial());
                serial().Should().Contain("FAIL");
            }
        }
        finally
        {
            Cleanup(snapshot);
            File.Delete(image);
        }
    }

    /// <summary>
    /// The vblk guest's used ring (0x132000) is written by the device's worker thread only, never by a vCPU. At the
    /// freeze the device is quiesced, so a snapshot's used index must be the guest's avail count (0x100228, written by
    /// the vCPU) or one behind it (a request not taken yet). Write tracking: the worker's writes after the freeze fault
    /// on the protected page like a vCPU's and are served (else the guest would stall), and the page saved is the
    /// freeze's (a later one would be ahead). Dirty log: KVM's log never sees the page change; only the VMM's
    /// host-write log makes the engine send it again (without it the index was 24 and 118 behind).
    /// </summary>
    [KvmTheory]
    [InlineData("write-tracking")]
    [InlineData("stop-copy")]
    [InlineData("dirty-log")]
    public void A_snapshot_holds_the_ring_the_device_wrote_as_of_the_freeze(string mode)
    {
        string image = NewImage();
        string snapshot = GuestFiles.TempPath("drive.mvs");
        try
        {
            var run = MinivmmProcess.Run(TimeSpan.FromMinutes(3), "run", "--kernel", GuestFiles.Virtio, "--mem", "64M",
                "--cmdline", "writer=3000 snapat=300", "--drive", $"file={image}", "--snapshot-to", snapshot,
                "--snapshot-mode", mode, "--exit-after-snapshot");
            run.ExitCode.Should().Be(0, run.Stderr);
            using var file = MiniVmm.Snapshot.Format.SnapshotFile.Open(snapshot);
            var page = new byte[4096];
            file.ReadPages(0, 0x100, page);          // the guest's data page
            ulong availCount = BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(0x228));
            file.ReadPages(0, 0x132, page);          // the used ring
            ushort usedIdx = BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(2));
            availCount.Should().BeGreaterThan(900, "the writer had made its 300 writes (3 requests each) before it asked");
            ((ushort)(availCount - usedIdx)).Should().BeLessThanOrEqualTo((ushort)1,
                $"the used ring is the device's at the freeze (avail {availCount}, used {usedIdx})");
        }
        finally
        {
            Cleanup(snapshot);
            File.Delete(image);
        }
    }

    /// <summary>A drive whose every 4 KiB block holds generation 1 (the writer's stamp), so it is all data.</summary>
    private static string StampedImage(int blocks)
    {
        string path = GuestFiles.TempPath("stamped.img");
        var bytes = new byte[blocks * 4096L];
        for (int s = 0; s < blocks * 8; s++)
            for (int w = 0; w < 64; w++)
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(s * 512 + w * 8), 1UL << 32 | (uint)s << 8 | (uint)w);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [KvmFact]
    public void A_destination_that_fills_up_during_the_disk_copy_fails_the_snapshot_and_the_guest_and_its_drive_carry_on()
    {
        string mount = Path.Combine(Path.GetTempPath(), $"minivmm-drivefull-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        // Room for the snapshot's RAM (~0.3 MiB of data) but not for the 16 MiB of drive data.
        Sh($"mount -t tmpfs -o size=4m tmpfs {mount}").Should().Be(0, "the test mounts a small tmpfs (needs root)");
        string image = StampedImage(4096);
        try
        {
            string snapshot = Path.Combine(mount, "full.mvs");
            var r = MinivmmProcess.Run(TimeSpan.FromMinutes(3), "run", "--kernel", GuestFiles.Virtio, "--mem", "64M",
                "--cmdline", "writer=2000 snapat=100", "--drive", $"file={image}", "--snapshot-to", snapshot);
            // The RAM image and the drive copy are written at the same time, so either may be the one that meets the
            // full tmpfs first; both must fail the snapshot the same way and leave nothing behind.
            r.Stderr.Should().Contain("snapshot (write-tracking) failed").And.Contain("No space left on device");
            r.ExitCode.Should().Be(0, "the guest ran on to its end: " + r.Stdout + r.Stderr);
            r.Stdout.Should().Contain("vdisk: writer done writes=2000, final check of 4096 blocks against the table, failures=0",
                "the guest's writes reached its drive intact while and after the capture failed");
            Directory.GetFiles(mount).Should().BeEmpty("a failed snapshot leaves no file, the drive copy included");
        }
        finally
        {
            Sh($"umount {mount}");
            Directory.Delete(mount);
            File.Delete(image);
        }
    }

    [KvmFact]
    public void A_vm_with_a_writable_drive_does_not_snapshot_to_exec()
    {
        string image = NewImage();
        try
        {
            var r = MinivmmProcess.Run(TimeSpan.FromMinutes(2), "run", "--kernel", GuestFiles.Virtio, "--mem", "64M", "--cmdline", "writer=500 snapat=50",
                "--drive", $"file={image}", "--snapshot-to", "exec:cat > /dev/null");
            r.ExitCode.Should().Be(0, "the guest runs on: " + r.Stdout + r.Stderr);
            r.Stderr.Should().Contain("snapshot not started").And.Contain("file only");
        }
        finally { File.Delete(image); }
    }

    private static int Sh(string command)
    {
        using var p = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardError = true })!;
        p.WaitForExit();
        return p.ExitCode;
    }
}
