using System.Text.Json.Nodes;
using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Snapshot.Format;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Snapshots driven through QMP the way research scripts drive QEMU, checked by restoring them: the self-checking
/// writer exits 0 only if the image was a point-in-time copy.
/// </summary>
public sealed class QmpSnapshotTests
{
    private const int Sweeps = 20000;

    [KvmTheory]
    [InlineData("background-snapshot", "write-tracking")]
    [InlineData("track-writes-ram", "write-tracking")]
    [InlineData(null, "dirty-log")]
    [InlineData("stop-copy", "stop-copy")]
    public void Migrate_to_a_file_takes_a_snapshot_that_restores(string? how, string engine)
    {
        string image = GuestFiles.TempPath("qmp.mvs");
        using (var vm = new QmpVmFixture($"mb=64 sweeps={Sweeps} report_ms=0"))
        using (var client = vm.Connect())
        {
            client.Return("migrate-set-capabilities", Caps(("events", true), ("background-snapshot", false)));
            if (how is "background-snapshot" or "track-writes-ram") client.Return("migrate-set-capabilities", Caps((how, true)));
            if (how == "stop-copy") client.Return("migrate-set-parameters", new JsonObject { ["x-minivmm-engine"] = "stop-copy" });
            client.Return("query-migrate-capabilities").AsArray()
                .Single(c => (string)c!["capability"]! == "background-snapshot")!["state"]!.GetValue<bool>()
                .Should().Be(engine == "write-tracking");

            client.Return("migrate", new JsonObject { ["uri"] = "file:" + image });
            var info = client.WaitForMigration();
            ((string)info["status"]!).Should().Be("completed", info.ToJsonString());
            var ram = info["ram"]!;
            ram["total"]!.GetValue<long>().Should().Be((long)(256UL << 20), "ram.total is guest RAM in bytes");
            ram["remaining"]!.GetValue<long>().Should().Be(0);
            ram["normal"]!.GetValue<long>().Should().BePositive();
            ram["duplicate"]!.GetValue<long>().Should().BePositive("most of RAM is zero");
            ram["transferred"]!.GetValue<long>().Should().BePositive();
            info["total-time"]!.GetValue<long>().Should().BeGreaterThanOrEqualTo(0);
            info["downtime"]!.GetValue<long>().Should().BeGreaterThanOrEqualTo(0);
            info["setup-time"]!.GetValue<long>().Should().BeGreaterThanOrEqualTo(0);
            ((string)info["x-minivmm"]!["engine"]!).Should().Be(engine);
            info["x-minivmm"]!["faults-served"].Should().NotBeNull();
            var statuses = client.Events.Where(e => (string?)e["event"] == "MIGRATION").Select(e => (string)e["data"]!["status"]!);
            statuses.Should().Equal("setup", "active", "completed");
            vm.ShouldBeRunning();
        }
        RestoreAndCheck(image);
    }

    [KvmFact]
    public void The_original_HMP_usage_streams_a_snapshot_to_exec_that_converts_and_restores()
    {
        string stream = GuestFiles.TempPath("vm_state");
        string image = GuestFiles.TempPath("hmp.mvs");
        using (var vm = new QmpVmFixture($"mb=64 sweeps={Sweeps} report_ms=0"))
        using (var client = vm.Connect())
        {
            client.Hmp("migrate_set_capability track-writes-ram on").Should().BeEmpty();
            client.Hmp("info migrate_capabilities").Should().Contain("background-snapshot: on");
            client.Hmp($"migrate exec:'cat > {stream}'").Should().BeEmpty();
            client.WaitForMigration();
            string text = client.Hmp("info migrate");
            text.Should().Contain("Migration status: completed").And.Contain("total ram: 262144 kbytes").And.Contain("faults-served:");
            client.Hmp("info status").Should().Be("VM status: running\n");
            client.Hmp("stop").Should().BeEmpty();
            client.Hmp("info status").Should().Be("VM status: paused\n");
            client.Hmp("cont").Should().BeEmpty();
            client.Hmp("frobnicate").Should().Contain("unknown command");
            client.Hmp("migrate_set_capability track-writes-ram maybe").Should().StartWith("Error:");
        }
        SnapshotConverter.Convert(stream, image);
        RestoreAndCheck(image);
        File.Delete(stream);
    }

    [KvmFact]
    public void Migrate_cancel_cancels_and_the_guest_runs_on()
    {
        string image = GuestFiles.TempPath("cancel.mvs");
        // A paced guest: a max-rate writer's faults would save everything before the cancel (the cap paces the scan only).
        using var vm = new QmpVmFixture("mb=64 sweeps=0 rate=2000 report_ms=0");
        using var client = vm.Connect();
        client.Return("migrate-set-capabilities", Caps(("background-snapshot", true), ("events", true)));
        client.Return("migrate-set-parameters", new JsonObject { ["max-bandwidth"] = 4L << 20 }); // 256 MiB would take a minute
        client.Return("migrate", new JsonObject { ["uri"] = "file:" + image });
        var busy = client.Command("migrate", new JsonObject { ["uri"] = "file:" + image + ".2" });
        ((string)busy["error"]!["desc"]!).Should().Contain("in progress", "one snapshot at a time");
        client.Command("migrate-set-capabilities", Caps(("events", false))).Should().ContainKey("error", "capabilities are fixed while migrating");
        ((string)client.Return("query-migrate")["status"]!).Should().Be("active");
        client.Return("migrate_cancel");
        ((string)client.WaitForMigration()["status"]!).Should().Be("cancelled");
        client.WaitForEvent("MIGRATION", e => (string?)e["data"]!["status"] == "cancelled");
        File.Exists(image).Should().BeFalse("a cancelled snapshot leaves no output");
        vm.ShouldBeRunning();
        client.Return("migrate_cancel"); // nothing to cancel is not an error, as in QEMU
    }

    [KvmFact]
    public void A_failing_exec_reader_fails_the_migration_and_the_guest_runs_on()
    {
        using var vm = new QmpVmFixture("mb=16 sweeps=0 report_ms=0");
        using var client = vm.Connect();
        client.Return("migrate", new JsonObject { ["uri"] = "exec:exit 3" });
        var info = client.WaitForMigration();
        ((string)info["status"]!).Should().Be("failed");
        ((string)info["error-desc"]!).Should().NotBeNullOrEmpty();
        vm.ShouldBeRunning();
    }

    [KvmFact]
    public void A_stopped_vm_stays_stopped_through_a_snapshot_and_cont_waits_for_a_stop_copy()
    {
        string image = GuestFiles.TempPath("stopped.mvs");
        using (var vm = new QmpVmFixture($"mb=64 sweeps={Sweeps} report_ms=0"))
        using (var client = vm.Connect())
        {
            client.Return("stop");
            ulong frozen = vm.Generation;
            client.Return("migrate-set-capabilities", Caps(("background-snapshot", true)));
            client.Return("migrate", new JsonObject { ["uri"] = "file:" + image });
            ((string)client.WaitForMigration()["status"]!).Should().Be("completed");
            Thread.Sleep(200);
            vm.Generation.Should().Be(frozen, "the engine's resume must not restart a VM the user stopped");
            ((string)client.Return("query-status")["status"]!).Should().Be("paused");
            client.Return("cont");
            vm.ShouldBeRunning();
        }
        RestoreAndCheck(image);
    }

    private static JsonObject Caps(params (string Name, bool State)[] caps) => new()
    {
        ["capabilities"] = new JsonArray(caps.Select(c => (JsonNode)new JsonObject { ["capability"] = c.Name, ["state"] = c.State }).ToArray()),
    };

    private static void RestoreAndCheck(string image)
    {
        var (restored, serial) = SnapshotHarness.Restore(image);
        using (restored)
        {
            restored.WaitForExit(TimeSpan.FromMinutes(3)).Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
        }
        File.Delete(image);
    }
}
