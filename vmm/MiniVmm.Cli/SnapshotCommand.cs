using MiniVmm.Machine.Snapshots;
using System.CommandLine;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Cli;

/// <summary>`minivmm snapshot inspect|verify|convert`: offline work on snapshot files; `--qmp` snapshots a running VM.</summary>
internal static class SnapshotCommand
{
    public static Command Create()
    {
        var command = new Command("snapshot", "Snapshot a running VM through its QMP monitor, or inspect, verify or convert snapshot files");
        QmpSnapshotClient.AddTo(command);
        command.Subcommands.Add(Inspect());
        command.Subcommands.Add(Verify());
        command.Subcommands.Add(Convert());
        command.Subcommands.Add(Merge());
        command.Subcommands.Add(Prune());
        return command;
    }

    private static Command Inspect()
    {
        var file = new Argument<string>("FILE");
        var json = JsonOption();
        var chainDirs = ChainDirOption();
        var c = new Command("inspect", "Show a snapshot's header, layout and state sections, and its chain when it is an incremental link") { file, json, chainDirs };
        c.SetAction(parse => Guard(parse.GetValue(file)!, () =>
        {
            string path = parse.GetValue(file)!;
            using var snapshot = SnapshotFile.Open(path);
            SnapshotChain? chain = null;
            string? chainError = null;
            if (snapshot.IsIncremental)
            {
                try { chain = SnapshotChain.Open(path, parse.GetValue(chainDirs)); }
                catch (Exception e) when (e is SnapshotFormatException or IOException or UnauthorizedAccessException) { chainError = e.Message; }
            }
            using (chain)
            {
                var drives = SnapshotDrives.Of(snapshot);
                Console.WriteLine(parse.GetValue(json) ? JsonOutput.Inspect(snapshot, chain, chainError, drives)
                    : snapshot.Describe() + (chain?.DescribeLinks() ?? "") + SnapshotDrives.Describe(drives));
            }
            if (chainError is null) return ExitCodes.Ok;
            Console.Error.WriteLine($"minivmm: {path}: {chainError}");
            return ExitCodes.BadInput;
        }));
        return c;
    }

    /// <summary>Where the parents of an incremental link are looked for, besides the link's own directory.</summary>
    internal static Option<string[]> ChainDirOption() => new("--chain-dir")
    {
        Description = "also look for an incremental snapshot's parents in DIR (repeatable; the snapshot's own directory is always searched)",
        HelpName = "DIR",
        Arity = ArgumentArity.ZeroOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    private static Command Prune()
    {
        var dir = new Argument<string>("CHAIN_DIR") { Description = "directory of a periodic checkpoint chain (e.g. the one --snapshot-to 'DIR/ck-%n.mvs' writes)" };
        var keep = new Option<int>("--keep") { Description = "links each chain keeps, the oldest of them full (at least 1)", Required = true, HelpName = "N" };
        var c = new Command("prune", "Bound every chain in CHAIN_DIR to N links: merge the oldest into one full snapshot, re-point the next link at it, delete what no link needs") { dir, keep };
        c.SetAction(parse => Guard(parse.GetValue(dir)!, () =>
        {
            if (parse.GetValue(keep) < 1) return CommonOptions.Usage(parse, "--keep: at least 1");
            var result = SnapshotPrune.Prune(parse.GetValue(dir)!, parse.GetValue(keep), sideFiles: DriveSideFiles.Instance);
            foreach (var m in result.MergedInto) Console.WriteLine($"merged base {m}");
            foreach (var r in result.Relinked) Console.WriteLine($"re-pointed {r}");
            foreach (var d in result.Deleted) Console.WriteLine($"deleted {d}");
            if (result.MergedInto.Count == 0) Console.WriteLine($"nothing to prune: no chain is longer than {parse.GetValue(keep)} link(s)");
            return ExitCodes.Ok;
        }));
        return c;
    }

    private static Command Merge()
    {
        var tip = new Argument<string>("TIP") { Description = "the newest link of an incremental chain" };
        var output = new Argument<string>("OUT") { Description = "full snapshot file to write (must not be a link of the chain)" };
        var chainDirs = ChainDirOption();
        var c = new Command("merge", "Squash an incremental chain into one full snapshot (written aside, renamed into place, verified)") { tip, output, chainDirs };
        c.SetAction(parse => Guard(parse.GetValue(tip)!, () =>
        {
            using var chain = SnapshotChain.Open(parse.GetValue(tip)!, parse.GetValue(chainDirs));
            MergeResult result;
            try { result = SnapshotMerge.Merge(chain, parse.GetValue(output)!, sideFiles: DriveSideFiles.Instance); }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"minivmm: {e.Message}");
                return ExitCodes.BadInput;
            }
            Console.WriteLine($"merged {result.LinksMerged} link(s) into {result.Path}: {result.PagesStored} pages stored, snapshot id {result.SnapshotId}");
            return ExitCodes.Ok;
        }));
        return c;
    }

    private static Command Verify()
    {
        var file = new Argument<string>("FILE");
        var json = JsonOption();
        var c = new Command("verify", "Check every checksum and that the snapshot is complete") { file, json };
        c.SetAction(parse => Guard(parse.GetValue(file)!, () =>
        {
            using var snapshot = SnapshotFile.Open(parse.GetValue(file)!);
            var result = snapshot.Verify();
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Verify(parse.GetValue(file)!, result));
                return result.IsValid ? ExitCodes.Ok : ExitCodes.BadInput;
            }
            if (!result.IsValid)
            {
                foreach (var error in result.Errors) Console.Error.WriteLine($"minivmm: {parse.GetValue(file)}: {error}");
                Console.Error.WriteLine($"minivmm: {parse.GetValue(file)}: {result.ErrorCount} error(s); the snapshot is damaged");
                return ExitCodes.BadInput;
            }
            Console.WriteLine($"{parse.GetValue(file)}: OK: {result.PresentPagesChecked} pages checked against their checksums, " +
                $"{result.AbsentPagesChecked} zero pages confirmed, {result.BytesRead} bytes read");
            return ExitCodes.Ok;
        }));
        return c;
    }

    private static Command Convert()
    {
        var stream = new Argument<string>("STREAM") { Description = "stream-form snapshot (what exec: received)" };
        var file = new Argument<string>("FILE") { Description = "file-form snapshot to write" };
        var c = new Command("convert", "Turn a stream-form snapshot into a snapshot file") { stream, file };
        c.SetAction(parse => Guard(parse.GetValue(stream)!, () =>
        {
            SnapshotConverter.Convert(parse.GetValue(stream)!, parse.GetValue(file)!);
            Console.WriteLine($"wrote {parse.GetValue(file)}");
            return ExitCodes.Ok;
        }));
        return c;
    }

    internal static Option<bool> JsonOption() => new("--json") { Description = "print one JSON object (kebab-case keys; see docs/OUTPUT.md)" };

    private static int Guard(string path, Func<int> action)
    {
        try { return action(); }
        catch (Exception e) when (e is SnapshotFormatException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"minivmm: {path}: {e.Message}");
            return ExitCodes.BadInput;
        }
    }
}
