using System.CommandLine;
using MiniVmm.Snapshot;

namespace MiniVmm.Cli.Tests;

/// <summary>Parses the snapshot options of `run` (with a --snapshot-to) into the options the engine would get.</summary>
internal static class SnapshotPlans
{
    public static (bool Ok, SnapshotOptions? Options, string? Error) Plan(params string[] args)
    {
        var snap = new SnapshotCliOptions();
        var command = new RootCommand();
        foreach (var o in snap.All) command.Options.Add(o);
        bool ok = RunCommand.TryGetSnapshotPlan(command.Parse(["--snapshot-to", "/tmp/x.mvs", .. args]), snap, out var plan, out string? error);
        return (ok, plan?.Options, error);
    }
}
