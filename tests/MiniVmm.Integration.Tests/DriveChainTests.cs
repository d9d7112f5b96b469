using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Incremental snapshots of a VM with a writable drive: each link holds the RAM pages and the drive blocks written since
/// its parent. The proof is the vblk guest's self-checking disk writer (its RAM table of each block's generation must
/// match the disk): every link, restored with its drive resolved from the chain, finishes the writer without a failed
/// read; so do the merged and the pruned chains; a link that lacks one changed block is caught by the writer.
/// </summary>
public sealed class DriveChainTests : IDisposable
{
    // Enough writes that the guest is still writing after three snapshots however fast the host (the first, full one
    // copies the whole drive while the writer goes on); a restored writer finishes the rest.
    private const int Writes = 30000;
    /// <summary>64 MiB: 16384 pages, so the few hundred random 4 KiB writes between two links touch a small part of them.</summary>
    private const long DriveBytes = 64L << 20;
    private const int DiskBlocks = (int)(DriveBytes / 4096);
    private readonly string _dir = Directory.CreateTempSubdirectory("mv-drivechain-").FullName;

    private string P(string name) => Path.Combine(_dir, name);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private string NewImage(string name)
    {
        string path = P(name);
        using (var f = File.Create(path)) f.SetLength(DriveBytes);
        return path;
    }

    private static void WriterPassed(string output, int exitCode, string what)
    {
        exitCode.Should().Be(0, $"{what}: {output}");
        output.Should().Contain($"vdisk: writer done writes={Writes}, final check of {DiskBlocks} blocks against the table, failures=0", what)
            .And.NotContain("FAIL", what);
    }

    private static void Signal(Process p, string name) => Process.Start("kill", [$"-{name}", p.Id.ToString()])!.WaitForExit();

    [KvmFact]
    public void Sigusr1_links_of_a_vm_writing_its_disk_restore_merge_and_prune_with_disk_and_ram_that_agree()
    {
        string image = NewImage("disk.img");
        var p = MinivmmProcess.Start(["run", "--kernel", GuestFiles.Virtio, "--mem", "64M", "--cmdline", $"writer={Writes} report=100",
            "--drive", $"file={image}", "--snapshot-to", P("ck-%n.mvs"), "--snapshot-incremental", "--snapshot-stats", P("stats.jsonl"),
            "--log-level", "information"]);
        var err = new StderrLines(p);
        var output = new System.Text.StringBuilder();
        int reports = 0;
        // Each report's cumulative write count and when it arrived (CLOCK_MONOTONIC ns, the clock of freeze-monotonic-ns).
        var progress = new List<(long ArrivedNs, long Writes)>();
        var stdout = Task.Run(async () =>
        {
            while (await p.StandardOutput.ReadLineAsync() is { } line)
            {
                long arrived = SnapshotResult.MonotonicNs(Stopwatch.GetTimestamp());
                lock (output) output.AppendLine(line);
                if (line.StartsWith("vdisk: writes=", StringComparison.Ordinal))
                {
                    lock (progress) progress.Add((arrived, long.Parse(line["vdisk: writes=".Length..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)));
                    Interlocked.Increment(ref reports);
                }
            }
            lock (output) return output.ToString();
        });
        try
        {
            err.WaitFor("vCPUs started").Should().BeTrue(err.Text);
            for (int i = 1; i <= 3; i++)
            {
                // A link every 300 writes of the guest's (three reports), whatever this host's speed.
                int due = Volatile.Read(ref reports) + 3;
                SpinWait.SpinUntil(() => Volatile.Read(ref reports) >= due || p.HasExited, TimeSpan.FromSeconds(60));
                p.HasExited.Should().BeFalse("the writer must still run for snapshot {0}: {1}", i, err.Text);
                Signal(p, "USR1");
                SpinWait.SpinUntil(() => File.Exists(P("stats.jsonl")) && File.ReadAllLines(P("stats.jsonl")).Length >= i, TimeSpan.FromSeconds(60))
                    .Should().BeTrue(err.Text);
            }
            p.WaitForExit(180_000).Should().BeTrue("the writer finishes");
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
        WriterPassed(stdout.Result, p.ExitCode, "the original run");
        var stats = File.ReadAllLines(P("stats.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        stats.Should().OnlyContain(s => s["succeeded"]!.GetValue<bool>(), err.Text);
        stats.Select(s => s["incremental"]!.GetValue<bool>()).Should().Equal(false, true, true);
        stats[0]["drive-changed-pages"].Should().BeNull("the first snapshot captures the whole drive");
        for (int i = 1; i < stats.Count; i++)
        {
            // Each guest write is one 4 KiB block, so a link holds at most the blocks written between the two freezes:
            // fewer than the reports bracketing them say, however long the snapshots took on this host.
            long parentFreeze = stats[i - 1]["freeze-monotonic-ns"]!.GetValue<long>(), freeze = stats[i]["freeze-monotonic-ns"]!.GetValue<long>();
            long writesBefore, writesAfter;
            lock (progress)
            {
                writesBefore = progress.Where(r => r.ArrivedNs <= parentFreeze).Select(r => r.Writes).DefaultIfEmpty(0).Max();
                writesAfter = progress.Where(r => r.ArrivedNs >= freeze).Select(r => r.Writes).DefaultIfEmpty(Writes).Min();
            }
            long pages = stats[i]["drive-changed-pages"]!.GetValue<long>();
            pages.Should().BeInRange(1, Math.Min(writesAfter - writesBefore, DiskBlocks - 1),
                "link {0} stores only the 4 KiB pages written since its parent (between {1} and {2} writes), not the drive's {3}", i, writesBefore, writesAfter, DiskBlocks);
            stats[i]["drive-bytes"]!.GetValue<long>().Should().Be(pages * 4096, "each changed page of the writer holds data");
        }

        var inspect = JsonNode.Parse(MinivmmProcess.Run("snapshot", "inspect", "--json", P("ck-3.mvs")).Stdout)!;
        var captured = inspect["drives"]![0]!["captured"]!;
        captured["incremental"]!.GetValue<bool>().Should().BeTrue();
        captured["pages-stored"]!.GetValue<long>().Should().Be(stats[2]["drive-changed-pages"]!.GetValue<long>());

        // Every link, restored onto a fresh image in each memory mode, continues the writer with a disk of its instant.
        string other = NewImage("other.img");
        foreach (var (link, mode) in new[] { ("ck-1.mvs", "lazy"), ("ck-2.mvs", "eager"), ("ck-3.mvs", "mmap"), ("ck-3.mvs", "lazy") })
        {
            var r = MinivmmProcess.Run(TimeSpan.FromMinutes(3), "restore", P(link), "--memory", mode, "--drive", other, "--drive-from-snapshot");
            WriterPassed(r.Stdout + r.Stderr, r.ExitCode, $"{link} ({mode})");
        }

        // Prune a copy of the chain to two links: the new base holds the merged drive, the folded links' captures go.
        string pruned = Directory.CreateDirectory(P("pruned")).FullName;
        foreach (string f in Directory.GetFiles(_dir, "ck-*")) File.Copy(f, Path.Combine(pruned, Path.GetFileName(f)));
        var prune = MinivmmProcess.Run("snapshot", "prune", "--keep", "2", pruned);
        prune.ExitCode.Should().Be(0, prune.Stderr);
        var left = Directory.GetFiles(pruned).Select(Path.GetFileName).ToList();
        left.Should().Contain(["ck-2.mvs", "ck-3.mvs", "ck-3.mvs.drive0"]).And.NotContain(["ck-1.mvs", "ck-1.mvs.drive0", "ck-2.mvs.drive0"]);
        left.Should().HaveCount(4, "the merged base's drive capture is the fourth file: " + string.Join(", ", left));
        var fromPruned = MinivmmProcess.Run(TimeSpan.FromMinutes(3), "restore", Path.Combine(pruned, "ck-3.mvs"), "--drive", other, "--drive-from-snapshot");
        WriterPassed(fromPruned.Stdout + fromPruned.Stderr, fromPruned.ExitCode, "the pruned chain's tip");

        // Merge: one full snapshot with one full drive capture, verified; it restores like the tip.
        var merge = MinivmmProcess.Run("snapshot", "merge", P("ck-3.mvs"), P("merged.mvs"));
        merge.ExitCode.Should().Be(0, merge.Stderr);
        File.Exists(P("merged.mvs.drive0")).Should().BeTrue();
        var mergedInspect = JsonNode.Parse(MinivmmProcess.Run("snapshot", "inspect", "--json", P("merged.mvs")).Stdout)!;
        mergedInspect["drives"]![0]!["captured"]!["incremental"]!.GetValue<bool>().Should().BeFalse();
        var fromMerged = MinivmmProcess.Run(TimeSpan.FromMinutes(3), "restore", P("merged.mvs"), "--drive", other, "--drive-from-snapshot");
        WriterPassed(fromMerged.Stdout + fromMerged.Stderr, fromMerged.ExitCode, "the merged chain");

        // A link's drive capture gone: restore (and merge) refuse the chain with the reason, and the drive is untouched.
        byte[] before = File.ReadAllBytes(other);
        File.Delete(P("ck-2.mvs.drive0"));
        var missing = MinivmmProcess.Run("restore", P("ck-3.mvs"), "--drive", other, "--drive-from-snapshot");
        missing.ExitCode.Should().Be(120, missing.Stderr);
        missing.Stderr.Should().Contain("ck-2.mvs.drive0").And.Contain("cannot be opened");
        File.ReadAllBytes(other).Should().Equal(before);
        var badMerge = MinivmmProcess.Run("snapshot", "merge", P("ck-3.mvs"), P("merged2.mvs"));
        badMerge.ExitCode.Should().Be(120, badMerge.Stderr);
        File.Exists(P("merged2.mvs")).Should().BeFalse();
        File.Exists(P("merged2.mvs.drive0")).Should().BeFalse();
    }

    private static SnapshotResult TakeLink(GuestRun run, SnapshotController controller, string path, SnapshotOptions? options = null) =>
        SnapshotHarness.TakeLink(run, controller, path, options);

    private static (VmExitStatus Exit, string Serial) RestoreAndRun(string path, string drive)
    {
        var (restored, serial) = SnapshotHarness.Restore(path, options: new RestoreOptions
        {
            Memory = RestoreMemoryMode.Eager, DrivePaths = [drive], Drives = DriveRestoreMode.FromSnapshot,
        });
        using (restored) return (restored.WaitForExit(TimeSpan.FromMinutes(3)), serial());
    }

    private static int Reports(string serial) => serial.Split('\n').Count(l => l.StartsWith("vdisk: writes=", StringComparison.Ordinal));

    /// <summary>Lets the guest make 300 more writes (three reports), whatever this host's speed.</summary>
    private static void ThreeMoreReports(GuestRun run, Func<string> serial)
    {
        int due = Reports(serial()) + 3;
        run.WaitUntil(() => Reports(serial()) >= due, "300 more writes", TimeSpan.FromSeconds(60));
    }

    [KvmFact]
    public void A_link_that_lacks_one_changed_drive_block_is_caught_by_the_writer_and_a_restored_vm_continues_the_chain()
    {
        string image = NewImage("disk.img");
        var (run, serial) = GuestRun.Boot(GuestFiles.Virtio, $"writer={Writes} report=100", mem: 64UL << 20, drives: [new DriveSpec(image)]);
        string full = P("full.mvs"), good = P("good.mvs"), bad = P("bad.mvs");
        using (run)
        {
            var controller = new SnapshotController(run.Vm, GuestRun.Loggers);
            run.Start();
            run.WaitUntil(() => serial().Contains("vdisk: writer"), "the writer to start", TimeSpan.FromSeconds(60));
            TakeLink(run, controller, full).Succeeded.Should().BeTrue();
            ThreeMoreReports(run, serial);
            var g = TakeLink(run, controller, good);
            g.Succeeded.Should().BeTrue(g.Error);
            g.Incremental.Should().BeTrue();
            g.DriveLinkPages.Should().BeGreaterThan(0);
            ThreeMoreReports(run, serial);
            var b = TakeLink(run, controller, bad, new SnapshotOptions { UnsafeDropOneChangedDriveBlock = true });
            b.Succeeded.Should().BeTrue(b.Error);
            run.Stop();
        }
        string other = NewImage("other.img");
        var (goodExit, goodSerial) = RestoreAndRun(good, other);
        goodExit.Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), goodSerial);
        WriterPassed(goodSerial, 0, "the good link");
        var (badExit, badSerial) = RestoreAndRun(bad, other);
        badExit.Should().Be(new VmExitStatus(VmStopReason.GuestExit, 1), "the writer reads a page of the parent's instant: " + badSerial);
        badSerial.Should().Contain("FAIL");

        // An eagerly restored VM's first snapshot is a link of the snapshot it came from, its drive included.
        string next = P("next.mvs");
        var (restored, restoredSerial) = SnapshotHarness.Restore(good, start: false, options: new RestoreOptions
        {
            Memory = RestoreMemoryMode.Eager, DrivePaths = [other], Drives = DriveRestoreMode.FromSnapshot,
        });
        using (restored)
        {
            var controller = new SnapshotController(restored.Vm, GuestRun.Loggers);
            controller.StartChainFromRestore();
            restored.Start();
            ThreeMoreReports(restored, restoredSerial);
            var r = TakeLink(restored, controller, next);
            r.Succeeded.Should().BeTrue(r.Error);
            r.Incremental.Should().BeTrue();
            r.DriveLinkPages.Should().NotBeNull("the drive joins the chain from the restore on");
            restored.Stop();
        }
        using (var chain = SnapshotChain.Open(next)) chain.Links.Should().HaveCount(3);
        string third = NewImage("third.img");
        var (nextExit, nextSerial) = RestoreAndRun(next, third);
        nextExit.Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), nextSerial);
        WriterPassed(nextSerial, 0, "a link of a restored VM");
    }
}
