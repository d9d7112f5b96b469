using System.Diagnostics;
using System.Text.RegularExpressions;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.S3;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Snapshots to and restores from a real S3 store (Ceph RGW, <see cref="RgwStore"/>), through the minivmm command:
/// a live snapshot of a running writer guest, a lazy restore whose self-check passes, a damaged object, and the store
/// going away in the middle of a snapshot.
/// </summary>
[Collection("rgw")]
public sealed partial class S3SnapshotTests(RgwStore rgw)
{
    // The writer sweeps its 64 MiB buffer this many times, checking every page it wrote before; it exits 0 only when
    // every check passed (1 otherwise), so a restored writer's exit status is its verdict on the restored RAM.
    private const string WriterArgs = "mb=64 sweeps=6000";

    private string TakeSnapshot(string bucket, string key)
    {
        var r = Run(rgw.Environment, TimeSpan.FromMinutes(2), "run", "--kernel", GuestFiles.Writer, "--mem", "128M", "--cmdline", WriterArgs,
            "--snapshot-to", $"s3://{bucket}/{key}", "--snapshot-after", "300ms", "--exit-after-snapshot");
        r.ExitCode.Should().Be(0, r.Stderr);
        r.Stderr.Should().Contain("snapshot (write-tracking)");
        return $"s3://{bucket}/{key}";
    }

    [KvmTheory]
    [InlineData("lazy")]
    [InlineData("eager")]
    public void A_running_writer_snapshotted_to_the_store_restores_from_it_and_passes_its_self_check(string memory)
    {
        string uri = TakeSnapshot(rgw.NewBucket(), "writer.mvs");
        var restored = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", uri, "--memory", memory);
        restored.ExitCode.Should().Be(0, "the writer checks every page it wrote before the snapshot: " + restored.Stderr);
        restored.Stdout.Should().Contain("failures=0");
    }

    [KvmFact]
    public void Two_restores_sharing_a_cache_dir_pass_and_the_second_reads_the_first_ones_blocks()
    {
        string uri = TakeSnapshot(rgw.NewBucket(), "cached.mvs");
        string cache = GuestFiles.TempPath("s3-cache");
        if (Directory.Exists(cache)) Directory.Delete(cache, recursive: true);
        try
        {
            var first = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", uri, "--memory", "lazy", "--cache-dir", cache);
            first.ExitCode.Should().Be(0, first.Stderr);
            first.Stdout.Should().Contain("failures=0");
            var blocks = Directory.GetFiles(Directory.GetDirectories(cache).Single());
            blocks.Should().NotBeEmpty().And.OnlyContain(b => !Path.GetFileName(b).EndsWith(".tmp"));
            var second = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", uri, "--memory", "lazy", "--cache-dir", cache);
            second.ExitCode.Should().Be(0, "the writer checks every page it wrote before the snapshot, here read from the cache: " + second.Stderr);
            second.Stdout.Should().Contain("failures=0");
        }
        finally
        {
            if (Directory.Exists(cache)) Directory.Delete(cache, recursive: true);
        }
    }

    [KvmFact]
    public void Four_clones_restored_at_once_from_one_object_all_pass_their_self_check()
    {
        string uri = TakeSnapshot(rgw.NewBucket(), "clones.mvs");
        var clones = Enumerable.Range(0, 4).Select(_ => Task.Run(() => Run(rgw.Environment, TimeSpan.FromMinutes(4), "restore", uri, "--memory", "lazy")))
            .ToArray();
        foreach (var clone in clones)
        {
            var r = clone.GetAwaiter().GetResult();
            r.ExitCode.Should().Be(0, r.Stderr);
            r.Stdout.Should().Contain("failures=0");
        }
    }

    [KvmFact]
    public void A_qmp_migrate_to_an_s3_uri_writes_an_object_that_restores()
    {
        string bucket = rgw.NewBucket();
        string socket = GuestFiles.TempPath("s3-qmp.sock");
        File.Delete(socket);
        // Enough sweeps that the guest is still running when a slow upload ends (a finished guest stops the VM and
        // with it the snapshot), and few enough that the restored writer finishes within the restore's time limit.
        using var vm = Start(rgw.Environment, "run", "--kernel", GuestFiles.Writer, "--mem", "128M", "--cmdline", "mb=64 sweeps=30000",
            "--serial", "none", "--qmp", $"unix:{socket},server,nowait");
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!File.Exists(socket) && DateTime.UtcNow < deadline && !vm.HasExited) Thread.Sleep(50);
            Thread.Sleep(300); // the writer fills its buffer
            // The snapshot client has no credentials: the VM uploads.
            var client = Run(new Dictionary<string, string>(), TimeSpan.FromMinutes(2), "snapshot", "--qmp", socket, "--to", $"s3://{bucket}/qmp.mvs");
            client.ExitCode.Should().Be(0, client.Stderr + client.Stdout);
        }
        finally
        {
            if (!vm.HasExited) { vm.Kill(); vm.WaitForExit(10000); }
            File.Delete(socket);
        }
        var restored = Run(rgw.Environment, TimeSpan.FromMinutes(3), "restore", $"s3://{bucket}/qmp.mvs", "--memory", "lazy");
        restored.ExitCode.Should().Be(0, restored.Stderr);
        restored.Stdout.Should().Contain("failures=0");
    }

    [KvmFact]
    public async Task A_changed_byte_in_a_guest_page_or_a_truncated_object_is_exit_120_before_the_guest_sees_the_page()
    {
        string bucket = rgw.NewBucket();
        TakeSnapshot(bucket, "good.mvs");
        using var store = new S3ObjectStore(rgw.Settings);
        var stat = (await store.StatAsync(bucket, "good.mvs", CancellationToken.None))!;
        var bytes = new byte[stat.Length];
        await store.ReadAsync(bucket, "good.mvs", 0, bytes, stat.ETag, CancellationToken.None);
        string local = GuestFiles.TempPath("s3-corrupt.mvs");
        File.WriteAllBytes(local, bytes);
        long offset;
        using (var file = SnapshotFile.Open(local))
        {
            long page = Enumerable.Range(0, (int)file.Regions[0].PageCount).Last(p => file.IsPresent(0, p));
            offset = file.RegionDataOffset(0) + page * 4096 + 123;
        }
        File.Delete(local);
        bytes[offset] ^= 0x40;
        await store.PutAsync(bucket, "bad.mvs", bytes, CancellationToken.None);

        var restored = Run(rgw.Environment, TimeSpan.FromMinutes(2), "restore", $"s3://{bucket}/bad.mvs", "--memory", "lazy");
        restored.ExitCode.Should().Be(120, restored.Stderr);
        restored.Stderr.Should().Contain("does not match its checksum");

        // An object cut short (an upload completed from too few parts) is refused before a VM is built.
        bytes[offset] ^= 0x40;
        await store.PutAsync(bucket, "short.mvs", bytes.AsMemory(0, (int)(stat.Length - (9 << 20))), CancellationToken.None);
        var truncated = Run(rgw.Environment, TimeSpan.FromMinutes(2), "restore", $"s3://{bucket}/short.mvs", "--memory", "lazy");
        truncated.ExitCode.Should().Be(120, truncated.Stderr);
        truncated.Stderr.Should().Contain("truncated");
    }

    [KvmFact]
    public async Task A_range_read_pinned_to_an_etag_fails_as_changed_once_the_object_is_replaced()
    {
        string bucket = rgw.NewBucket();
        using var store = new S3ObjectStore(rgw.Settings);
        await store.PutAsync(bucket, "v.bin", new byte[8192], CancellationToken.None);
        var stat = (await store.StatAsync(bucket, "v.bin", CancellationToken.None))!;
        stat.Length.Should().Be(8192);
        var buffer = new byte[4096];
        await store.ReadAsync(bucket, "v.bin", 4096, buffer, stat.ETag, CancellationToken.None);
        await store.PutAsync(bucket, "v.bin", Enumerable.Repeat((byte)1, 8192).ToArray(), CancellationToken.None);
        var changed = await FluentActions.Awaiting(() => store.ReadAsync(bucket, "v.bin", 0, buffer, stat.ETag, CancellationToken.None))
            .Should().ThrowAsync<MiniVmm.Snapshot.ObjectStore.ObjectStoreException>().WithMessage("*changed during the restore*");
        changed.Which.Transient.Should().BeFalse("the 412 is final: retrying cannot bring the old version back");
        changed.Which.Unreachable.Should().BeFalse();
        (await store.StatAsync(bucket, "missing.bin", CancellationToken.None)).Should().BeNull();
    }

    [KvmFact]
    public void A_missing_object_is_exit_120_and_an_unreachable_store_exit_128()
    {
        string bucket = rgw.NewBucket();
        var missing = Run(rgw.Environment, TimeSpan.FromMinutes(1), "restore", $"s3://{bucket}/nothing.mvs");
        missing.ExitCode.Should().Be(120, missing.Stderr);
        missing.Stderr.Should().Contain("does not exist");

        var env = new Dictionary<string, string>(rgw.Environment) { ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9" };
        var unreachable = Run(env, TimeSpan.FromMinutes(1), "restore", $"s3://{bucket}/nothing.mvs");
        unreachable.ExitCode.Should().Be(128, unreachable.Stderr);
        unreachable.Stderr.Should().Contain("cannot be reached");
        (missing.Stderr + unreachable.Stderr).Should().NotContain(rgw.SecretKey);
    }

    [KvmFact]
    public void The_store_stopped_in_the_middle_of_a_snapshot_fails_it_cleanly_while_the_guest_keeps_running()
    {
        using var own = new RgwStore(); // this test stops its store: not the shared one
        string bucket = own.NewBucket();
        string spool = Directory.CreateTempSubdirectory("minivmm-s3-spool").FullName;
        var env = new Dictionary<string, string>(own.Environment) { ["MINIVMM_SPOOL_DIR"] = spool };
        // 256 MiB written at full speed, the scan capped at 32 MiB/s: the snapshot runs for seconds, uploading.
        using var p = Start(env, "run", "--kernel", GuestFiles.Writer, "--mem", "512M", "--cmdline", "mb=256 sweeps=0",
            "--snapshot-to", $"s3://{bucket}/vm.mvs", "--snapshot-after", "1s", "--snapshot-rate-limit", "32", "--snapshot-timeout", "5s");
        var stdout = new List<string>();
        var stderr = new List<string>();
        p.OutputDataReceived += (_, e) => { if (e.Data is { } l) lock (stdout) stdout.Add(l); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is { } l) lock (stderr) stderr.Add(l); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            // The spool appears once the store accepted the upload: the snapshot is under way.
            WaitFor(() => Directory.EnumerateFiles(spool).Any(), TimeSpan.FromSeconds(60), "the snapshot to start uploading", stderr);
            own.Stop();
            WaitFor(() => { lock (stderr) return stderr.Any(l => l.Contains(") failed:", StringComparison.Ordinal)); },
                TimeSpan.FromSeconds(60), "the snapshot to fail", stderr);
            long pagesAtFailure = LastPagesWritten(stdout);
            // The guest runs on: its progress reports keep coming, with more pages written, after the failure.
            WaitFor(() => LastPagesWritten(stdout) > pagesAtFailure + 65536, TimeSpan.FromSeconds(60), "the guest to keep writing", stdout);
            p.HasExited.Should().BeFalse("a failed snapshot does not stop the VM");
            Directory.EnumerateFiles(spool).Should().BeEmpty("a failed upload removes its spool");
        }
        finally
        {
            if (!p.HasExited) { p.Kill(); p.WaitForExit(10000); }
            Directory.Delete(spool, recursive: true);
        }
        lock (stderr) string.Join("\n", stderr).Should().NotContain(own.SecretKey);
    }

    [KvmFact]
    public void The_store_stopped_during_a_lazy_restore_stops_the_vm_with_exit_128_and_no_hung_vcpu()
    {
        using var own = new RgwStore(); // this test stops its store: not the shared one
        string bucket = own.NewBucket();
        // 512 MiB written: the background prefetch needs seconds to fetch it, so the store goes away before it is done.
        var snap = Run(own.Environment, TimeSpan.FromMinutes(3), "run", "--kernel", GuestFiles.Writer, "--mem", "1G", "--cmdline", "mb=512 sweeps=0",
            "--snapshot-to", $"s3://{bucket}/big.mvs", "--snapshot-after", "1s", "--exit-after-snapshot", "--snapshot-timeout", "60s");
        snap.ExitCode.Should().Be(0, snap.Stderr);
        using var p = Start(own.Environment, "restore", $"s3://{bucket}/big.mvs", "--memory", "lazy");
        var stdout = new List<string>();
        var stderr = new List<string>();
        p.OutputDataReceived += (_, e) => { if (e.Data is { } l) lock (stdout) stdout.Add(l); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is { } l) lock (stderr) stderr.Add(l); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            WaitFor(() => { lock (stdout) return stdout.Any(l => l.StartsWith("writer:", StringComparison.Ordinal)); }, TimeSpan.FromSeconds(60),
                "the restored guest's first line", stderr);
            own.Stop();
            // The writer never ends by itself: only the failed fetch can stop it (the read deadline bounds the wait).
            p.WaitForExit(TimeSpan.FromSeconds(90)).Should().BeTrue("a store that stops answering must not leave the VM hanging");
            p.WaitForExit();
            lock (stderr) p.ExitCode.Should().Be(128, string.Join("\n", stderr));
        }
        finally
        {
            if (!p.HasExited) { p.Kill(); p.WaitForExit(10000); }
        }
    }

    [KvmFact]
    public void A_writable_drive_with_an_s3_destination_is_refused_with_exit_120()
    {
        string image = GuestFiles.TempPath("s3-drive.img");
        File.WriteAllBytes(image, new byte[1 << 20]);
        var r = Run(rgw.Environment, TimeSpan.FromMinutes(1), "run", "--kernel", GuestFiles.Writer, "--drive", $"file={image}",
            "--snapshot-to", "s3://bucket/vm.mvs", "--snapshot-after", "1s");
        File.Delete(image);
        r.ExitCode.Should().Be(120, r.Stderr);
        r.Stderr.Should().Contain("writable --drive");
    }

    [GeneratedRegex(@"writer: gen=\d+ pages=(\d+)")]
    private static partial Regex PagesWritten();

    private static long LastPagesWritten(List<string> lines)
    {
        lock (lines)
            for (int i = lines.Count - 1; i >= 0; i--)
                if (PagesWritten().Match(lines[i]) is { Success: true } m) return long.Parse(m.Groups[1].Value);
        return -1;
    }

    private static void WaitFor(Func<bool> condition, TimeSpan timeout, string what, List<string> output)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
                lock (output) throw new TimeoutException($"waited {timeout} for {what}; output:\n{string.Join("\n", output.TakeLast(30))}");
            Thread.Sleep(50);
        }
    }

    private static Process Start(IReadOnlyDictionary<string, string> env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(MinivmmProcess.DllPath);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    private static MinivmmProcess.Result Run(IReadOnlyDictionary<string, string> env, TimeSpan timeout, params string[] args)
    {
        using var p = Start(env, args);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"minivmm {string.Join(' ', args)} did not exit within {timeout}: {stderr.Result}");
        }
        return new MinivmmProcess.Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
