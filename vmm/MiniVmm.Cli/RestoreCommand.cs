using System.CommandLine;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Cli;

/// <summary>`minivmm restore FILE`: rebuild the VM a snapshot recorded and resume it (memory eager, mapped or lazy).</summary>
internal static class RestoreCommand
{
    /// <summary>Every word <c>--memory</c> accepts: the parser and shell completion both read it.</summary>
    public static readonly IReadOnlyDictionary<string, RestoreMemoryMode> MemoryWords = new Dictionary<string, RestoreMemoryMode>(StringComparer.Ordinal)
    {
        ["lazy"] = RestoreMemoryMode.Lazy,
        ["mmap"] = RestoreMemoryMode.Mmap,
        ["eager"] = RestoreMemoryMode.Eager,
    };

    public static Command Create()
    {
        // Zero or one for the parser: `--record-working-set vm.mvs` gives the option the file name, which the action moves back.
        var file = new Argument<string?>("FILE") { Description = "snapshot file written by --snapshot-to", Arity = ArgumentArity.ZeroOrOne };
        var serial = new Option<string>("--serial") { Description = "serial console: stdio | file:PATH | none", DefaultValueFactory = _ => "stdio" };
        var allowCpu = new Option<bool>("--allow-cpu-mismatch") { Description = "restore even if the host CPU model differs from the recorded one" };
        var memory = new Option<string>("--memory")
        {
            Description = "how guest RAM comes back: lazy (default: on demand through userfaultfd, checksums verified, " +
                          "working set prefetched) | mmap (copy-on-write mapping of the file) | eager (read everything first)",
            DefaultValueFactory = _ => "lazy",
        };
        var record = new Option<string?>("--record-working-set")
        {
            Description = "lazy: record the pages the guest touches in the first DURATION (default 1s) into FILE.ws; later lazy restores prefetch them first",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var noWorkingSet = new Option<bool>("--no-working-set") { Description = "lazy: ignore FILE.ws" };
        var logLevel = CommonOptions.LogLevel();
        var qmp = QmpCliOption.Create();
        var paused = CommonOptions.Paused();
        var printConfig = new Option<bool>("--print-config") { Description = "print the snapshot's machine as a `run --config` file and exit" };
        var chainDirs = SnapshotCommand.ChainDirOption();
        var driveFromSnapshot = new Option<bool>("--drive-from-snapshot")
        {
            Description = "write the drive content the snapshot captured (FILE.driveN) into each drive before resuming, even if the drive changed since (default: a changed drive is refused)",
        };
        var drivePaths = new Option<string[]>("--drive")
        {
            Description = "restore onto this image instead of the recorded drive path (repeatable, in drive order; file=PATH also accepted)",
            HelpName = "FILE",
            Arity = ArgumentArity.ZeroOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var cacheDir = new Option<string?>("--cache-dir")
        {
            Description = "s3:// only: keep the object's blocks in DIR and read them from there first (shared by the clones restored on this host)",
            HelpName = "DIR",
        };
        var snap = new SnapshotCliOptions();
        var s3 = new S3CliOptions();
        var command = new Command("restore", "Restore a snapshot and resume the guest") { file, serial, allowCpu, memory, record, noWorkingSet, logLevel, qmp, paused, printConfig, chainDirs, driveFromSnapshot, drivePaths, cacheDir };
        foreach (var o in snap.All) command.Options.Add(o);
        foreach (var o in s3.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            if (!CommonOptions.TryGetLevel(parse.GetValue(logLevel)!, out var level, out string? levelError)) return CommonOptions.Usage(parse, levelError!);
            if (!RunCommand.TryParseSerial(parse.GetValue(serial)!, out var serialTarget))
                return CommonOptions.Usage(parse, $"--serial: '{parse.GetValue(serial)}' is not stdio, none or file:PATH");
            if (!RunCommand.TryGetSnapshotPlan(parse, snap, out var plan, out string? snapError)) return CommonOptions.Usage(parse, snapError!);
            if (!QmpCliOption.TryParse(parse.GetValue(qmp), out var qmpSpecs, out string? qmpError)) return CommonOptions.Usage(parse, qmpError!);
            if (parse.GetValue(paused) && qmpSpecs.Count == 0) return CommonOptions.Usage(parse, "--paused needs --qmp: the monitor's cont starts the VM");
            if (!MemoryWords.TryGetValue(parse.GetValue(memory)!, out RestoreMemoryMode mode))
                return CommonOptions.Usage(parse, $"--memory: '{parse.GetValue(memory)}' is not {string.Join(", ", MemoryWords.Keys)}");
            string? path = parse.GetValue(file);
            string? recordText = parse.GetValue(record);
            if (path is null && recordText is not null && !SnapshotCliOptions.TryParseDuration(recordText, out _))
                (path, recordText) = (recordText, null); // only a duration is the option's value
            if (path is null) return CommonOptions.Usage(parse, "restore: no snapshot FILE given");
            if (!RunCommand.TryGetS3(parse, s3, plan, qmpSpecs, storeSource: MiniVmm.Snapshot.ObjectStore.ObjectUri.IsObjectUri(path), out var s3Access, out string? s3Error))
                return CommonOptions.Usage(parse, s3Error!);
            if (parse.GetValue(printConfig)) return PrintConfig(path);
            TimeSpan? recordFor = null;
            if (parse.GetResult(record) is not null)
            {
                string text = recordText ?? "1s";
                if (!SnapshotCliOptions.TryParseDuration(text, out var d) || d <= TimeSpan.Zero)
                    return CommonOptions.Usage(parse, $"--record-working-set: '{text}' is not a duration (e.g. 500ms, 2s)");
                if (parse.GetValue(paused)) return CommonOptions.Usage(parse, "--record-working-set cannot be combined with --paused: its window would pass before cont");
                if (mode != RestoreMemoryMode.Lazy) return CommonOptions.Usage(parse, "--record-working-set needs --memory lazy");
                recordFor = d;
            }
            var restoreOptions = new RestoreOptions
            {
                Serial = serialTarget,
                AllowCpuMismatch = parse.GetValue(allowCpu),
                Memory = mode,
                RecordWorkingSet = recordFor,
                UseWorkingSet = !parse.GetValue(noWorkingSet),
                ChainDirectories = parse.GetValue(chainDirs) ?? [],
                DrivePaths = [.. (parse.GetValue(drivePaths) ?? []).Select(p => p.StartsWith("file=", StringComparison.Ordinal) ? p[5..] : p)],
                Drives = parse.GetValue(driveFromSnapshot) ? DriveRestoreMode.FromSnapshot : DriveRestoreMode.Check,
                CacheDirectory = parse.GetValue(cacheDir),
                S3 = s3Access,
            };
            if (restoreOptions.DrivePaths.Any(string.IsNullOrEmpty)) return CommonOptions.Usage(parse, "--drive: empty path");
            if (restoreOptions.CacheDirectory is { } cache && (cache.Length == 0 || !MiniVmm.Snapshot.ObjectStore.ObjectUri.IsObjectUri(path)))
                return CommonOptions.Usage(parse, cache.Length == 0 ? "--cache-dir: empty path" : "--cache-dir needs an s3:// snapshot");
            if (plan?.IncrementalFrom is not null && mode != RestoreMemoryMode.Eager)
                return CommonOptions.Usage(parse, "--incremental-from needs --memory eager: only eagerly restored RAM is tracked from the first instruction");
            using var loggers = Logging.Create(level);
            var log = loggers.CreateLogger("minivmm");
            Vm vm;
            try
            {
                vm = VmRestore.Restore(path, restoreOptions, loggers);
            }
            catch (MiniVmm.Snapshot.ObjectStore.ObjectStoreException e) when (e.Unreachable)
            {
                Console.Error.WriteLine($"minivmm: cannot restore '{path}': {e.Message}");
                return ExitCodes.StoreUnreachable;
            }
            // Every defect of the file's content is one of the first two (a value KVM refuses included); a LinuxException
            // here is the host lacking a feature (121, below), although it is an IOException.
            catch (Exception e) when (e is SnapshotFormatException or StateRestoreException or UnauthorizedAccessException or ArgumentException
                                      || (e is IOException && e is not KvmSharp.LinuxException))
            {
                Console.Error.WriteLine($"minivmm: cannot restore '{path}': {e.Message}");
                return ExitCodes.BadInput;
            }
            catch (Exception e) { return CommonOptions.ReportStartupFailure(log, e); }
            if (plan?.IncrementalFrom is { } basePath && CheckIncrementalBase(vm, basePath) is { } baseError)
            {
                vm.Dispose();
                Console.Error.WriteLine($"minivmm: --incremental-from: {baseError}");
                return ExitCodes.BadInput;
            }
            return VmSession.Run(vm, plan, qmpSpecs, loggers, parse.GetValue(paused), s3Access);
        });
        return command;
    }

    /// <summary>Null when <paramref name="basePath"/> is the snapshot the VM was restored from (by content), else why not.</summary>
    private static string? CheckIncrementalBase(Vm vm, string basePath)
    {
        try
        {
            using var baseFile = SnapshotFile.Open(basePath);
            var from = vm.RestoredFrom!;
            return baseFile.Identity == from.Identity ? null
                : $"'{basePath}' (snapshot {baseFile.SnapshotId}) is not the snapshot this VM was restored from ('{from.Path}', {from.Identity.SnapshotId}): " +
                  "an incremental link can only build on the snapshot its VM continues";
        }
        catch (Exception e) when (e is SnapshotFormatException or IOException or UnauthorizedAccessException) { return $"'{basePath}': {e.Message}"; }
    }

    private static int PrintConfig(string path)
    {
        try
        {
            using var file = SnapshotFile.Open(path);
            Console.WriteLine(ConfigFile.FromRecorded(RecordedVmConfig.FromJson(file.Info.VmConfig)));
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is SnapshotFormatException or StateRestoreException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"minivmm: cannot read '{path}': {e.Message}");
            return ExitCodes.BadInput;
        }
    }
}
