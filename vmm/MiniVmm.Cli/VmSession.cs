using Microsoft.Extensions.Logging;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;

namespace MiniVmm.Cli;

/// <summary>
/// Runs a built VM (booted or restored) the way `run` and `restore` share: one snapshot controller for every trigger
/// and the QMP monitor, SIGINT/SIGTERM as a clean stop, and the process exit code. Owns and disposes the VM.
/// </summary>
internal static class VmSession
{
    /// <param name="paused">build the VM but hold its vCPUs until the monitor's `cont` (QEMU's -S)</param>
    /// <param name="s3">--s3-profile and --s3-endpoint: for --snapshot-to s3:// and the monitor's migrate s3:// alike</param>
    public static int Run(Vm vm, SnapshotPlan? plan, IReadOnlyList<QmpSpec> qmp, ILoggerFactory loggers, bool paused = false, S3Access? s3 = null)
    {
        var log = loggers.CreateLogger("minivmm");
        using var stopRequested = new CancellationTokenSource();
        int stopSignal = HostSignals.SIGINT;
        var controller = new SnapshotController(vm, loggers) { S3 = s3 ?? S3Access.Default };
        if (!QmpCliOption.TryStart(vm, controller, qmp, loggers, out var monitor, out string? qmpError))
        {
            vm.Dispose();
            return CommonOptions.Fail(qmpError!);
        }
        using (vm)
        using (monitor)
        using (HostSignals.Handle(Stop))
        using (SnapshotTriggers.Attach(vm, controller, plan, loggers))
        {
            if (qmp.Where(q => q.Wait).ToList() is { Count: > 0 } waitOn && !WaitForClients(monitor!, waitOn, stopRequested.Token))
                return HostSignals.ExitCodeFor(stopSignal);
            if (plan is { Incremental: true })
            {
                try { controller.StartChainFromRestore(); }
                catch (Exception e) when (e is MiniVmm.Snapshot.Engines.SnapshotException or MiniVmm.Snapshot.Incremental.ChangeTrackingException
                                              or KvmSharp.LinuxException)
                {
                    return CommonOptions.Fail("incremental snapshots are not available: " + e.Message);
                }
            }
            if (paused) controller.RunState.HoldFromStart();
            var status = vm.Run(paused);
            // A bad snapshot found after the guest started (lazy restore) is the user's input problem: say so plainly,
            // as for a file refused up front, not only in the log.
            if (status.Reason == VmStopReason.CorruptSnapshot) Console.Error.WriteLine("minivmm: " + status.Detail);
            if (status.IsNormal) log.LogInformation("VM stopped: {Status}", status.Describe());
            else log.LogWarning("VM stopped: {Status}", status.Describe());
            return QmpCliOption.ExitCode(monitor, status);
        }

        void Stop(int signal)
        {
            stopSignal = signal;
            vm.RequestStop(new VmExitStatus(VmStopReason.HostRequest, (uint)signal, "stopped by " + (signal == HostSignals.SIGINT ? "SIGINT" : "SIGTERM")));
            stopRequested.Cancel();
        }
    }

    /// <summary>QEMU's `server,wait`: nothing runs until each waiting socket has its client (a signal ends the wait).</summary>
    private static bool WaitForClients(MiniVmm.Machine.Monitor.QmpServer monitor, IReadOnlyList<QmpSpec> specs, CancellationToken stop)
    {
        string where = string.Join(" and ", specs.Select(s => Path.GetFullPath(s.Path)));
        Console.Error.WriteLine($"minivmm: waiting for a QMP client on {where} (wait=on; the VM starts once {(specs.Count > 1 ? "each has" : "it has")} one)");
        return monitor.WaitForClients(specs.Select(s => s.Path), stop);
    }
}
