using System.CommandLine;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Cli;

/// <summary>`minivmm restore FILE`: rebuild the VM a snapshot recorded and resume it (eager: every page loaded first).</summary>
internal static class RestoreCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "snapshot file written by --snapshot-to" };
        var serial = new Option<string>("--serial") { Description = "serial console: stdio | file:PATH | none", DefaultValueFactory = _ => "stdio" };
        var allowCpu = new Option<bool>("--allow-cpu-mismatch") { Description = "restore even if the host CPU model differs from the recorded one" };
        var logLevel = CommonOptions.LogLevel();
        var qmp = QmpCliOption.Create();
        var snap = new SnapshotCliOptions();
        var command = new Command("restore", "Restore a snapshot and resume the guest") { file, serial, allowCpu, logLevel, qmp };
        foreach (var o in snap.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            if (!CommonOptions.TryGetLevel(parse.GetValue(logLevel)!, out var level)) return ExitCodes.BadInput;
            if (!RunCommand.TryParseSerial(parse.GetValue(serial)!, out var serialTarget))
                return CommonOptions.Fail($"--serial: '{parse.GetValue(serial)}' is not stdio, none or file:PATH");
            if (!RunCommand.TryGetSnapshotPlan(parse, snap, out var plan, out string? snapError)) return CommonOptions.Fail(snapError!);
            if (!QmpCliOption.TryParse(parse.GetValue(qmp), out string? qmpPath, out string? qmpError)) return CommonOptions.Fail(qmpError!);
            using var loggers = Logging.Create(level);
            var log = loggers.CreateLogger("minivmm");
            Vm vm;
            try
            {
                vm = VmRestore.Restore(parse.GetValue(file)!, new RestoreOptions { Serial = serialTarget, AllowCpuMismatch = parse.GetValue(allowCpu) }, loggers);
            }
            catch (Exception e) when (e is SnapshotFormatException or StateRestoreException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"minivmm: cannot restore '{parse.GetValue(file)}': {e.Message}");
                return ExitCodes.BadInput;
            }
            catch (Exception e) { return CommonOptions.ReportStartupFailure(log, e); }
            var controller = new SnapshotController(vm, loggers);
            if (!QmpCliOption.TryStart(vm, controller, qmpPath, loggers, out var monitor, out string? startError))
            {
                vm.Dispose();
                return CommonOptions.Fail(startError!);
            }
            using (vm)
            using (monitor)
            using (PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop))
            using (PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop))
            using (SnapshotTriggers.Attach(vm, controller, plan, loggers))
            {
                var status = vm.Run();
                if (status.Reason is not (VmStopReason.GuestExit or VmStopReason.AfterSnapshot)) log.LogWarning("VM stopped: {Status}", status);
                return QmpCliOption.ExitCode(monitor, status);
            }

            void Stop(PosixSignalContext ctx)
            {
                ctx.Cancel = true;
                vm.RequestStop(new VmExitStatus(VmStopReason.HostRequest, Detail: $"received {ctx.Signal}"));
            }
        });
        return command;
    }
}
