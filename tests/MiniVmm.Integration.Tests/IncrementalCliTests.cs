using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>The chain commands as a user runs them: SIGUSR1 links, inspect, merge, restore, and the refusals.</summary>
public sealed class IncrementalCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mv-chain-cli-").FullName;

    private string P(string name) => Path.Combine(_dir, name);

    [KvmFact]
    public void Sigusr1_repeats_build_a_chain_that_inspects_merges_and_restores()
    {
        using (var p = StartWriter("--snapshot-to", P("ck-%n.mvs"), "--snapshot-incremental", "--snapshot-stats", P("stats.jsonl")))
        {
            var err = new StderrLines(p);
            try
            {
                err.WaitFor("vCPUs started").Should().BeTrue(err.Text);
                for (int i = 1; i <= 3; i++)
                {
                    Signal(p, "USR1");
                    SpinWait.SpinUntil(() => File.Exists(P($"ck-{i}.mvs")), TimeSpan.FromSeconds(60)).Should().BeTrue(err.Text);
                    SpinWait.SpinUntil(() => StatsLines() >= i, TimeSpan.FromSeconds(60)).Should().BeTrue(err.Text);
                    Thread.Sleep(100);
                }
            }
            finally { Stop(p); }
        }
        var stats = File.ReadAllLines(P("stats.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        stats.Select(s => s["incremental"]!.GetValue<bool>()).Should().Equal(false, true, true);
        stats.Should().OnlyContain(s => s["succeeded"]!.GetValue<bool>());

        var inspect = MinivmmProcess.Run("snapshot", "inspect", "--json", P("ck-3.mvs"));
        inspect.ExitCode.Should().Be(0, inspect.Stderr);
        var o = JsonNode.Parse(inspect.Stdout)!;
        o["parent"].Should().NotBeNull();
        o["chain"]!.AsArray().Select(l => l!["path"]!.GetValue<string>()).Should().Equal(P("ck-3.mvs"), P("ck-2.mvs"), P("ck-1.mvs"));
        o["pages-present"]!.GetValue<long>().Should().Be(stats[2]["changed-pages"]!.GetValue<long>());

        // prune --keep 2 in a copy of the chain: two links remain, the tip still restores (below, from the copy).
        string pruned = Directory.CreateDirectory(P("pruned")).FullName;
        foreach (var f in new[] { "ck-1.mvs", "ck-2.mvs", "ck-3.mvs" }) File.Copy(P(f), Path.Combine(pruned, f));
        MinivmmProcess.Run("snapshot", "prune", "--keep", "0", pruned).ExitCode.Should().Be(120);
        var prune = MinivmmProcess.Run("snapshot", "prune", "--keep", "2", pruned);
        prune.ExitCode.Should().Be(0, prune.Stderr);
        Directory.GetFiles(pruned).Select(Path.GetFileName).Should().BeEquivalentTo(["ck-2.mvs", "ck-3.mvs"]);
        var prunedInspect = JsonNode.Parse(MinivmmProcess.Run("snapshot", "inspect", "--json", Path.Combine(pruned, "ck-3.mvs")).Stdout)!;
        prunedInspect["chain"]!.AsArray().Should().HaveCount(2);

        var merge = MinivmmProcess.Run("snapshot", "merge", P("ck-3.mvs"), P("merged.mvs"));
        merge.ExitCode.Should().Be(0, merge.Stderr);
        MinivmmProcess.Run("snapshot", "verify", P("merged.mvs")).ExitCode.Should().Be(0);
        var merged = JsonNode.Parse(MinivmmProcess.Run("snapshot", "inspect", "--json", P("merged.mvs")).Stdout)!;
        merged["parent"].Should().BeNull();

        // The restored tip and the merged file finish the writer's sweeps, checking every page it re-reads: exit 0.
        foreach (var (file, mode) in new[] { ("ck-3.mvs", "eager"), ("ck-2.mvs", "lazy"), ("merged.mvs", "mmap"), ("pruned/ck-3.mvs", "lazy") })
        {
            var r = MinivmmProcess.Run(TimeSpan.FromSeconds(120), "restore", P(file), "--memory", mode, "--serial", "none");
            r.ExitCode.Should().Be(0, $"{file} ({mode}) restores the writer's memory exactly; {r.Stderr}");
        }
    }

    [KvmFact]
    public void A_chain_with_its_parent_gone_is_refused_by_restore_and_inspect_and_found_with_chain_dir()
    {
        using (var p = StartWriter("--snapshot-to", P("c-%n.mvs"), "--snapshot-incremental"))
        {
            var err = new StderrLines(p);
            try
            {
                err.WaitFor("vCPUs started").Should().BeTrue(err.Text);
                Signal(p, "USR1");
                SpinWait.SpinUntil(() => File.Exists(P("c-1.mvs")), TimeSpan.FromSeconds(60)).Should().BeTrue(err.Text);
                Thread.Sleep(300);
                Signal(p, "USR1");
                SpinWait.SpinUntil(() => File.Exists(P("c-2.mvs")), TimeSpan.FromSeconds(60)).Should().BeTrue(err.Text);
            }
            finally { Stop(p); }
        }
        string away = Directory.CreateDirectory(P("away")).FullName;
        File.Move(P("c-1.mvs"), Path.Combine(away, "c-1.mvs"));
        var restore = MinivmmProcess.Run("restore", P("c-2.mvs"), "--serial", "none");
        restore.ExitCode.Should().Be(120);
        restore.Stderr.Should().Contain("missing").And.Contain("--chain-dir");
        MinivmmProcess.Run("snapshot", "inspect", P("c-2.mvs")).ExitCode.Should().Be(120);
        var found = MinivmmProcess.Run("snapshot", "inspect", "--chain-dir", away, P("c-2.mvs"));
        found.ExitCode.Should().Be(0, found.Stderr);
    }

    [Theory]
    [InlineData("run", "--snapshot-incremental")]
    [InlineData("run", "--snapshot-to", "exec:cat >/dev/null", "--snapshot-incremental")]
    [InlineData("run", "--snapshot-to", "x.mvs", "--snapshot-incremental", "--snapshot-mode", "stop-copy")]
    [InlineData("run", "--snapshot-to", "x.mvs", "--incremental-from", "base.mvs")]
    public void Incremental_misuse_is_a_usage_error(params string[] args)
    {
        var r = MinivmmProcess.Run([.. args, "--kernel", GuestFiles.Hello]);
        r.ExitCode.Should().Be(120, r.Stderr);
        r.Stdout.Should().BeEmpty("the guest never ran");
    }

    [KvmFact]
    public void Incremental_from_a_snapshot_that_is_not_the_restored_one_is_refused()
    {
        string a = P("a.mvs"), b = P("b.mvs");
        foreach (var path in new[] { a, b })
        {
            var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=8 sweeps=0 report_ms=0",
                "--serial", "none", "--snapshot-to", path, "--snapshot-after", "200ms", "--exit-after-snapshot");
            r.ExitCode.Should().Be(0, r.Stderr);
        }
        var lazy = MinivmmProcess.Run("restore", a, "--snapshot-to", P("n.mvs"), "--incremental-from", a);
        lazy.ExitCode.Should().Be(120, "--incremental-from needs --memory eager");
        var wrong = MinivmmProcess.Run("restore", a, "--memory", "eager", "--serial", "none", "--snapshot-to", P("n.mvs"), "--incremental-from", b);
        wrong.ExitCode.Should().Be(120);
        wrong.Stderr.Should().Contain("not the snapshot this VM was restored from");
    }

    [KvmFact]
    public void Qmp_migrate_with_the_incremental_capability_writes_links_of_the_previous_snapshot()
    {
        using (var vm = new QmpVmFixture("mb=16 sweeps=0 rate=20000 report_ms=0"))
        using (var client = vm.Connect())
        {
            client.Return("migrate-set-capabilities", new JsonObject
            {
                ["capabilities"] = new JsonArray(
                    new JsonObject { ["capability"] = "background-snapshot", ["state"] = true },
                    new JsonObject { ["capability"] = "x-minivmm-incremental", ["state"] = true }),
            });
            for (int i = 1; i <= 2; i++)
            {
                client.Return("migrate", new JsonObject { ["uri"] = "file:" + P($"q-{i}.mvs") });
                var info = client.WaitForMigration();
                ((string)info["status"]!).Should().Be("completed", info.ToJsonString());
                info["x-minivmm"]!["incremental"]!.GetValue<bool>().Should().Be(i == 2, info.ToJsonString());
                Thread.Sleep(100);
            }
            vm.ShouldBeRunning();
        }
        var inspect = MinivmmProcess.Run("snapshot", "inspect", "--json", P("q-2.mvs"));
        inspect.ExitCode.Should().Be(0, inspect.Stderr);
        JsonNode.Parse(inspect.Stdout)!["chain"]!.AsArray().Should().HaveCount(2);
    }

    private int StatsLines() => File.Exists(P("stats.jsonl")) ? File.ReadAllLines(P("stats.jsonl")).Length : 0;

    private static Process StartWriter(params string[] extra) => MinivmmProcess.Start(
        ["run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=8 sweeps=40 rate=20000 report_ms=0", "--serial", "none",
         "--log-level", "information", .. extra]);

    private static void Signal(Process p, string name) => Process.Start("kill", [$"-{name}", p.Id.ToString()])!.WaitForExit();

    private static void Stop(Process p)
    {
        if (!p.HasExited) Signal(p, "TERM");
        if (!p.WaitForExit(30_000)) p.Kill();
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }
}
