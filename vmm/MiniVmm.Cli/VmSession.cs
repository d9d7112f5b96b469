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
    public static int Run(Vm vm, SnapshotPlan? plan, string? qmpPath, ILoggerFactory loggers, bool paused = false)
    {
        var log = loggers.CreateLogger("minivmm");
        var controller = new SnapshotController(vm, loggers);
        if (!QmpCliOption.TryStart(vm, controller, qmpPath, loggers, out var monitor, out string? qmpError))
        {
            vm.Dispose();
            return CommonOptions.Fail(qmpError!);
        }
        using (vm)
        using (monitor)
        using (HostSignals.Handle(Stop))
        using (SnapshotTriggers.Attach(vm, controller, plan, loggers))
        {
            if (paused) controller.RunState.HoldFromStart();
            var status = vm.Run(paused);
            // A bad snapshot found after the guest started (lazy restore) is the user's input problem: say so plainly,
            // as for a file refused up front, not only in the log.
            if (status.Reason == VmStopReason.CorruptSnapshot) Console.Error.WriteLine("minivmm: " + status.Detail);
            if (status.IsNormal) log.LogInformation("VM stopped: {Status}", status.Describe());
            else log.LogWarning("VM stopped: {Status}", status.Describe());
            return QmpCliOption.ExitCode(monitor, status);
        }

        void Stop(int signal) => vm.RequestStop(new VmExitStatus(VmStopReason.HostRequest, (uint)signal,
            "stopped by " + (signal == HostSignals.SIGINT ? "SIGINT" : "SIGTERM")));
    }
}
