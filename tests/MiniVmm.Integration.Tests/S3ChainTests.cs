using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.ObjectStore;
using MiniVmm.Snapshot.Restore;
using MiniVmm.Snapshot.S3;
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

        // The tip resolves, in the store, to the three objects the VM wrote, newest first.
        var tipUri = new ObjectUri(bucket, "vms/ck-3.mvs");
        using (var parents = new ObjectStoreParents(new S3ObjectStore(rgw.Settings), () => new S3ObjectStore(rgw.Settings), tipUri, cacheDirectory: null))
        using (var chain = SnapshotChain.Resolve(SnapshotFile.Open(ObjectStoreBytes.Open(new S3ObjectStore(rgw.Settings), tipUri), tipUri.ToString()), parents))
            chain.Links.Select(l => l.Path).Should().Equal($"s3://{bucket}/vms/ck-3.mvs", $"s3://{bucket}/vms/ck-2.mvs", $"s3://{bucket}/vms/ck-1.mvs");
        foreach (string memory in new[] { "lazy", "eager" })
        {
            var restored = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", $"s3://{bucket}/vms/ck-3.mvs", "--memory", memory, "--serial", "none");
            restored.ExitCode.Should().Be(0, $"the writer checks every page it wrote ({memory}), the parents' pages included: " + restored.Stderr);
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
            "--serial", "none");
        recording.ExitCode.Should().Be(0, recording.Stderr);
        using var store = new S3ObjectStore(rgw.Settings);
        var ws = await store.StatAsync(bucket, "ws.mvs.ws", default);
        ws.Should().NotBeNull("the working set is an object beside the snapshot");
        var data = new byte[ws!.Length];
        await store.ReadAsync(bucket, "ws.mvs.ws", 0, data, ws.ETag, default);
        WorkingSetFile.Decode(data, ulong.MaxValue, "ws.mvs.ws").Should().NotBeEmpty("it lists the pages the guest touched first");
        var next = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", uri, "--memory", "lazy", "--serial", "none");
        next.ExitCode.Should().Be(0, "the writer checks every page it wrote: " + next.Stderr);
        // The next restore reads it: a damaged working set beside the object is refused like a damaged local one.
        data[^1] ^= 0xff;
        await store.PutAsync(bucket, "ws.mvs.ws", data, default);
        var damaged = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", uri, "--memory", "lazy", "--serial", "none");
        damaged.ExitCode.Should().Be(120, "the restore read the stored working set and found it corrupt: " + damaged.Stderr);
    }
}
