using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>Incremental links in the store: each a separate object naming its parent, resolved there on restore.</summary>
public sealed partial class S3SnapshotTests
{
    [KvmFact]
    public void Sigusr1_links_to_the_store_form_a_chain_that_restores_from_it_lazily_and_eagerly()
    {
        string bucket = rgw.NewBucket();
        string stats = GuestFiles.TempPath("s3-chain-stats.jsonl");
        File.Delete(stats);
        // Paced (20000 pages/s over 4096 pages): each link holds what the writer wrote since the last one, and the
        // writer runs long enough (60 sweeps) for three snapshots and their uploads.
        using var vm = Start(rgw.Environment, "run", "--kernel", GuestFiles.Writer, "--mem", "128M", "--cmdline", "mb=16 sweeps=60 rate=20000 report_ms=0",
            "--serial", "none", "--snapshot-to", $"s3://{bucket}/vms/ck-%n.mvs", "--snapshot-incremental", "--snapshot-stats", stats,
            "--log-level", "information");
        vm.StandardInput.Close();
        var err = new StderrLines(vm);
        _ = vm.StandardOutput.ReadToEndAsync();
        try
        {
            err.WaitFor("vCPUs started").Should().BeTrue(err.Text);
            for (int i = 1; i <= 3; i++)
            {
                Thread.Sleep(300);
                Process.Start("kill", ["-USR1", vm.Id.ToString()])!.WaitForExit();
                SpinWait.SpinUntil(() => File.Exists(stats) && File.ReadAllLines(stats).Length >= i, TimeSpan.FromSeconds(90)).Should().BeTrue(err.Text);
            }
        }
        finally
        {
            if (!vm.HasExited) { vm.Kill(); vm.WaitForExit(10000); }
        }
        var rows = File.ReadAllLines(stats).Select(l => JsonNode.Parse(l)!).ToList();
        File.Delete(stats);
        rows.Should().OnlyContain(r => r["succeeded"]!.GetValue<bool>(), err.Text);
        rows.Select(r => r["incremental"]!.GetValue<bool>()).Should().Equal(false, true, true);
        rows[2]["pages-saved"]!.GetValue<long>().Should().BeLessThan(rows[0]["pages-saved"]!.GetValue<long>(), "a link saves only what changed");

        foreach (string memory in new[] { "lazy", "eager" })
        {
            var restored = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", $"s3://{bucket}/vms/ck-3.mvs", "--memory", memory, "--serial", "none",
                "--log-level", "information");
            restored.ExitCode.Should().Be(0, $"the writer checks every page it wrote ({memory}): " + restored.Stderr);
            restored.Stderr.Should().Contain("chain of 3 links");
        }
        var second = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", $"s3://{bucket}/vms/ck-2.mvs", "--serial", "none");
        second.ExitCode.Should().Be(0, "an inner link restores too: " + second.Stderr);
    }

    [KvmFact]
    public async Task A_working_set_recorded_by_one_restore_is_stored_beside_the_object_and_prefetched_first_by_the_next()
    {
        string bucket = rgw.NewBucket();
        string uri = TakeSnapshot(bucket, "ws.mvs");
        var recording = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", uri, "--memory", "lazy", "--record-working-set", "300ms",
            "--serial", "none", "--log-level", "information");
        recording.ExitCode.Should().Be(0, recording.Stderr);
        recording.Stderr.Should().Contain($"into {uri}.ws");
        using (var store = new MiniVmm.Snapshot.S3.S3ObjectStore(rgw.Settings))
            (await store.StatAsync(bucket, "ws.mvs.ws", default)).Should().NotBeNull("the working set is an object beside the snapshot");
        var next = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", uri, "--memory", "lazy", "--serial", "none", "--log-level", "information");
        next.ExitCode.Should().Be(0, "the writer checks every page it wrote: " + next.Stderr);
        next.Stderr.Should().Contain($"prefetching the working set {uri}.ws");
    }
}
