using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Restore;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Guests with more than 3 GiB of RAM: the rest lies from 4 GiB, above the 32-bit MMIO hole. The writer keeps its
/// buffer up there (base=4096), so what it checks after a restore came from the second region.
/// </summary>
public sealed class LargeGuestTests
{
    private const ulong Mem = 4UL << 30;
    private const int Sweeps = 3000;

    [KvmFact]
    public void The_guest_sees_ram_from_4_GiB_and_the_hole_below_it()
    {
        var (run, serial) = GuestRun.Boot(GuestFiles.Writer, "base=4096 mb=512 sweeps=2 report_ms=0", mem: Mem);
        using (run) run.Start().WaitForExit(TimeSpan.FromMinutes(2)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());

        // A buffer from 3000 MiB to 4200 MiB crosses the hole: the guest's own memory map check refuses it.
        var (gap, gapSerial) = GuestRun.Boot(GuestFiles.Writer, "base=3000 mb=1200 sweeps=1 report_ms=0", mem: Mem);
        using (gap) gap.Start().WaitForExit(TimeSpan.FromMinutes(1)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, GuestAbi.ExitBadArguments), gapSerial());
        gapSerial().Should().Contain("is not all RAM (first gap at 0xc0000000)");
    }

    [KvmTheory]
    [InlineData(RestoreMemoryMode.Lazy)]
    [InlineData(RestoreMemoryMode.Eager)]
    [InlineData(RestoreMemoryMode.Mmap)]
    public void A_snapshot_of_ram_above_4_GiB_restores_in_each_memory_mode(RestoreMemoryMode mode)
    {
        string image = Snapshot($"large-{mode}.mvs");
        using (var file = SnapshotFile.Open(image))
        {
            file.Info.Regions.Select(r => (r.GuestAddress, r.Size)).Should().Equal((0UL, 3UL << 30), (4UL << 30, 1UL << 30));
            file.PresentPages(1).Should().BeGreaterThanOrEqualTo(64 * 256, "the writer's buffer is in the second region");
        }
        RestoredWriterCompletes(image, new RestoreOptions { Memory = mode });
        File.Delete(image);
    }

    [KvmFact]
    public void A_working_set_recorded_above_4_GiB_is_replayed()
    {
        string image = Snapshot("large-ws.mvs");
        var (recording, _) = SnapshotHarness.Restore(image, options: new RestoreOptions { Memory = RestoreMemoryMode.Lazy, RecordWorkingSet = TimeSpan.FromMilliseconds(300) });
        using (recording) recording.WaitForExit(TimeSpan.FromMinutes(3)).Reason.Should().Be(VmStopReason.GuestExit);
        var pages = WorkingSetFile.Read(WorkingSetFile.PathFor(image), ulong.MaxValue);
        pages.Should().Contain(p => p >= (4UL << 30) >> 12, "the writer touched its buffer above 4 GiB first");
        RestoredWriterCompletes(image, new RestoreOptions { Memory = RestoreMemoryMode.Lazy });
        File.Delete(image);
        File.Delete(WorkingSetFile.PathFor(image));
    }

    private static string Snapshot(string name) =>
        RestoreModeTests.TakeWriterSnapshot(1, name, "base=4096 report_ms=0", Sweeps, Mem);

    private static void RestoredWriterCompletes(string image, RestoreOptions options) =>
        RestoreModeTests.RestoredWriterCompletes(image, options, sweeps: Sweeps);
}
