using MiniVmm.Core.Runtime;
using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Restore;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>Eager, mmap and lazy restore, working sets, clones, corrupt pages and snapshots of restored VMs.</summary>
public sealed class RestoreModeTests
{
    private const int Sweeps = 20000;

    /// <summary>A snapshot of a max-rate writer (mb=64) taken after two sweeps; returns its path.</summary>
    internal static string TakeWriterSnapshot(int cpus, string name, string extra = "", int sweeps = Sweeps, ulong mem = 256UL << 20)
    {
        string image = GuestFiles.TempPath(name);
        var (run, _) = GuestRun.Boot(GuestFiles.Writer, $"mb=64 sweeps={sweeps} cpus={cpus} {extra}", cpus, mem);
        using (run)
        {
            run.Start();
            run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 2, "two sweeps");
            var result = SnapshotHarness.Take(run, image, new SnapshotOptions());
            result.Succeeded.Should().BeTrue(result.Error);
            run.Stop();
        }
        return image;
    }

    /// <summary>Restores a <see cref="TakeWriterSnapshot"/> image and checks the writer finished all its sweeps clean.</summary>
    internal static void RestoredWriterCompletes(string image, RestoreOptions options, int cpus = 1, int sweeps = Sweeps)
    {
        var (restored, serial) = SnapshotHarness.Restore(image, options: options);
        using (restored)
        {
            restored.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
            restored.Status(GuestAbi.Status.ClockBackwards).Should().Be(0, "the guest's TSC continues from the snapshot, never backwards");
            for (int v = 0; v < cpus; v++) restored.VcpuStatus(v, GuestAbi.VcpuStatus.Generation).Should().Be((ulong)sweeps);
        }
    }

    [KvmTheory]
    [InlineData(RestoreMemoryMode.Eager, 1)]
    [InlineData(RestoreMemoryMode.Mmap, 1)]
    [InlineData(RestoreMemoryMode.Lazy, 1)]
    [InlineData(RestoreMemoryMode.Mmap, 2)]
    [InlineData(RestoreMemoryMode.Lazy, 2)]
    public void Writer_restored_in_each_memory_mode_completes_every_sweep(RestoreMemoryMode mode, int cpus)
    {
        // Progress reports every 20 ms: each compares the TSC with the previous one, across the restore too.
        string image = TakeWriterSnapshot(cpus, $"mode-{mode}-{cpus}.mvs", "report_ms=20");
        RestoredWriterCompletes(image, new RestoreOptions { Memory = mode }, cpus);
        File.Delete(image);
    }

    [KvmFact]
    public void Lazy_restore_installs_the_written_buffer_as_huge_pages()
    {
        string image = TakeWriterSnapshot(1, "huge.mvs");
        var (restored, serial) = SnapshotHarness.Restore(image, options: new RestoreOptions { Memory = RestoreMemoryMode.Lazy });
        using (restored)
        {
            restored.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
            // The 64 MiB buffer was moved in as 2 MiB blocks (UFFDIO_MOVE of a staging huge page), not copied per 4 KiB.
            long hugeKb = AnonHugePagesKb(restored.Vm.Memory.Regions[0].HostAddressForTests);
            hugeKb.Should().BeGreaterThanOrEqualTo(32 * 1024, "at least half of the restored buffer is on huge pages");
        }
        File.Delete(image);
    }

    /// <summary>AnonHugePages of the mapping that starts at <paramref name="address"/>, from /proc/self/smaps.</summary>
    private static long AnonHugePagesKb(ulong address)
    {
        string start = address.ToString("x");
        bool inMapping = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            if (char.IsAsciiHexDigit(line[0]) && line.Contains('-'))
                inMapping = line.StartsWith(start + "-", StringComparison.Ordinal);
            else if (inMapping && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        }
        throw new InvalidOperationException($"no mapping starts at 0x{start}");
    }

    [KvmFact]
    public void Lazy_restore_records_a_working_set_and_a_later_restore_prefetches_it()
    {
        string image = TakeWriterSnapshot(1, "ws.mvs");
        string ws = WorkingSetFile.PathFor(image);
        var (recording, _) = SnapshotHarness.Restore(image, options: new RestoreOptions { Memory = RestoreMemoryMode.Lazy, RecordWorkingSet = TimeSpan.FromMilliseconds(300) });
        using (recording)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!File.Exists(ws) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            File.Exists(ws).Should().BeTrue("recording ends after 300 ms and writes FILE.ws");
            recording.WaitForExit(TimeSpan.FromMinutes(3)).GuestStatus.Should().Be(0);
        }
        var pages = WorkingSetFile.Read(ws, 1UL << 40);
        pages.Should().NotBeEmpty();
        pages.Should().OnlyHaveUniqueItems();
        pages.Should().Contain(GuestAbi.BufferGpa >> 12, "the writer touches its buffer right after resume");
        RestoredWriterCompletes(image, new RestoreOptions { Memory = RestoreMemoryMode.Lazy });
        File.Delete(ws);
        File.Delete(image);
    }

    /// <summary>Guest address of the writer's first code page: the page a restored vCPU touches first.</summary>
    private const long WriterCodeGpa = 0x100000;

    [KvmTheory]
    [InlineData(RestoreMemoryMode.Eager, false)]
    [InlineData(RestoreMemoryMode.Lazy, false)]
    [InlineData(RestoreMemoryMode.Lazy, true)]
    public void A_corrupt_page_is_caught_by_its_checksum_before_the_guest_sees_it(RestoreMemoryMode mode, bool codePage)
    {
        string image = TakeWriterSnapshot(1, $"corrupt-{mode}.mvs");
        long offset;
        using (var file = SnapshotFile.Open(image))
            offset = file.RegionDataOffset(0) + (codePage ? WriterCodeGpa + 64 : (long)GuestAbi.BufferGpa + 4096 * 10 + 8);
        using (var f = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = offset;
            int b = f.ReadByte();
            f.Position = offset;
            f.WriteByte((byte)(b ^ 0x80));
        }
        if (mode == RestoreMemoryMode.Eager)
        {
            var act = () => VmRestore.Restore(image, new RestoreOptions { Memory = mode, Serial = new SerialTarget.None() }, GuestRun.Loggers);
            act.Should().Throw<SnapshotFormatException>().WithMessage("*checksum*");
        }
        else
        {
            var (restored, _) = SnapshotHarness.Restore(image, options: new RestoreOptions { Memory = mode });
            using (restored)
            {
                var status = restored.WaitForExit(TimeSpan.FromMinutes(1));
                status.Reason.Should().Be(VmStopReason.CorruptSnapshot);
                status.ProcessExitCode.Should().Be(120);
                status.Detail.Should().Contain("checksum");
                // A vCPU parked in a userfault on the corrupt page is woken and stops, not abandoned after a timeout.
                restored.Vm.VcpuThreads.Should().OnlyContain(t => t.State == VcpuRunState.Stopped);
            }
        }
        File.Delete(image);
    }

    [KvmFact]
    public void Several_mmap_clones_of_one_snapshot_run_independently()
    {
        string image = TakeWriterSnapshot(1, "clones.mvs");
        var clones = Enumerable.Range(0, 3)
            .Select(_ => SnapshotHarness.Restore(image, options: new RestoreOptions { Memory = RestoreMemoryMode.Mmap }))
            .ToList();
        try
        {
            foreach (var (clone, serial) in clones)
                clone.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
        }
        finally
        {
            foreach (var (clone, _) in clones) clone.Dispose();
        }
        File.Delete(image);
    }

    [KvmFact]
    public void Snapshot_of_a_lazily_restored_vm_is_consistent()
    {
        string first = TakeWriterSnapshot(1, "chain-1.mvs");
        string second = GuestFiles.TempPath("chain-2.mvs");
        var (restored, _) = SnapshotHarness.Restore(first, options: new RestoreOptions { Memory = RestoreMemoryMode.Lazy });
        using (restored)
        {
            // Immediately, while pages are still being fetched.
            var result = SnapshotHarness.Take(restored, second, new SnapshotOptions());
            result.Succeeded.Should().BeTrue(result.Error);
            restored.Stop();
        }
        RestoredWriterCompletes(second, new RestoreOptions { Memory = RestoreMemoryMode.Lazy });
        File.Delete(first);
        File.Delete(second);
    }

    [KvmFact]
    public void Snapshot_of_an_mmap_restored_vm_refuses_write_tracking_with_the_alternatives_and_works_with_stop_copy()
    {
        string first = TakeWriterSnapshot(1, "mmap-1.mvs");
        string second = GuestFiles.TempPath("mmap-2.mvs");
        var (restored, _) = SnapshotHarness.Restore(first, options: new RestoreOptions { Memory = RestoreMemoryMode.Mmap });
        using (restored)
        {
            var refused = SnapshotHarness.Take(restored, second, new SnapshotOptions());
            refused.Succeeded.Should().BeFalse();
            refused.Error.Should().Contain("--memory mmap").And.Contain("stop-copy");
            File.Exists(second).Should().BeFalse();
            var result = SnapshotHarness.Take(restored, second, new SnapshotOptions { Mode = SnapshotMode.StopAndCopy });
            result.Succeeded.Should().BeTrue(result.Error);
            restored.Stop();
        }
        RestoredWriterCompletes(second, new RestoreOptions { Memory = RestoreMemoryMode.Lazy });
        File.Delete(first);
        File.Delete(second);
    }
}
