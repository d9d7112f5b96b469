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
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "snapshot file written by --snapshot-to" };
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
        var snap = new SnapshotCliOptions();
        var command = new Command("restore", "Restore a snapshot and resume the guest") { file, serial, allowCpu, memory, record, noWorkingSet, logLevel, qmp };
        foreach (var o in snap.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            if (!CommonOptions.TryGetLevel(parse.GetValue(logLevel)!, out var level)) return ExitCodes.BadInput;
            if (!RunCommand.TryParseSerial(parse.GetValue(serial)!, out var serialTarget))
                return CommonOptions.Fail($"--serial: '{parse.GetValue(serial)}' is not stdio, none or file:PATH");
            if (!RunCommand.TryGetSnapshotPlan(parse, snap, out var plan, out string? snapError)) return CommonOptions.Fail(snapError!);
            if (!QmpCliOption.TryParse(parse.GetValue(qmp), out string? qmpPath, out string? qmpError)) return CommonOptions.Fail(qmpError!);
            RestoreMemoryMode mode;
            switch (parse.GetValue(memory))
            {
                case "lazy": mode = RestoreMemoryMode.Lazy; break;
                case "mmap": mode = RestoreMemoryMode.Mmap; break;
                case "eager": mode = RestoreMemoryMode.Eager; break;
                default: return CommonOptions.Fail($"--memory: '{parse.GetValue(memory)}' is not lazy, mmap or eager");
            }
            TimeSpan? recordFor = null;
            if (parse.GetResult(record) is not null)
            {
                string text = parse.GetValue(record) ?? "1s";
                if (!SnapshotCliOptions.TryParseDuration(text, out var d) || d <= TimeSpan.Zero)
                    return CommonOptions.Fail($"--record-working-set: '{text}' is not a duration (e.g. 500ms, 2s)");
                if (mode != RestoreMemoryMode.Lazy) return CommonOptions.Fail("--record-working-set needs --memory lazy");
                recordFor = d;
            }
            var restoreOptions = new RestoreOptions
            {
                Serial = serialTarget,
                AllowCpuMismatch = parse.GetValue(allowCpu),
                Memory = mode,
                RecordWorkingSet = recordFor,
                UseWorkingSet = !parse.GetValue(noWorkingSet),
            };
            using var loggers = Logging.Create(level);
            var log = loggers.CreateLogger("minivmm");
            Vm vm;
            try
            {
                vm = VmRestore.Restore(parse.GetValue(file)!, restoreOptions, loggers);
            }
            // Every defect of the file's content is one of the first two (a value KVM refuses included); a KvmException
            // here is the host lacking a feature (121, below), although it is an IOException.
            catch (Exception e) when (e is SnapshotFormatException or StateRestoreException or UnauthorizedAccessException
                                      || (e is IOException && e is not KvmSharp.KvmException))
            {
                Console.Error.WriteLine($"minivmm: cannot restore '{parse.GetValue(file)}': {e.Message}");
                return ExitCodes.BadInput;
            }
            catch (Exception e) { return CommonOptions.ReportStartupFailure(log, e); }
            return VmSession.Run(vm, plan, qmpPath, loggers);
        });
        return command;
    }
}
