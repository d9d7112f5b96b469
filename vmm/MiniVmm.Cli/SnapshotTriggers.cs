using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Snapshot;

namespace MiniVmm.Cli;

internal sealed record SnapshotPlan(string Destination, SnapshotOptions Options, TimeSpan? Delay, bool ExitAfter, string? StatsPath = null,
    bool Overwrite = false, bool Incremental = false, string? IncrementalFrom = null);

/// <summary>
/// Wires the ways a snapshot starts (--snapshot-after timer, SIGUSR1, a guest request on the control port) and is
/// cancelled (SIGUSR2) to a <see cref="SnapshotController"/>, and prints the one-line summary when it ends. The
/// controller is the VM's only one: the QMP monitor shares it, so there is one snapshot at a time whoever asks.
/// </summary>
internal sealed class SnapshotTriggers : IDisposable
{
    private const int SIGUSR1 = 10, SIGUSR2 = 12;
    private readonly List<IDisposable> _registrations = new();

    private SnapshotTriggers() { }

    public static IDisposable Attach(Vm vm, SnapshotController controller, SnapshotPlan? plan, ILoggerFactory loggers)
    {
        var triggers = new SnapshotTriggers();
        var log = loggers.CreateLogger("minivmm");
        if (plan is null)
        {
            // Snapshots started from the monitor still get their summary line.
            controller.Completed += result => Console.Error.WriteLine(OutcomeLine(result));
            vm.GuestSnapshotRequested += () => log.LogWarning("the guest requested a snapshot, but no --snapshot-to was given");
            return triggers;
        }
        var naming = new SnapshotNaming(plan.Destination, plan.Overwrite);
        void Start()
        {
            string? error = null;
            if (controller.CurrentJob is not null) error = "a snapshot is already in progress";
            else if (naming.TryNext(DateTime.UtcNow, out string destination, out error)) controller.TryStart(destination, plan.Options, out error, chain: plan.Incremental);
            if (error is not null)
            {
                Console.Error.WriteLine($"minivmm: snapshot not started: {error}");
                if (plan.ExitAfter && controller.CurrentJob is null)
                    vm.RequestStop(new VmExitStatus(VmStopReason.AfterSnapshot, 1, error));
            }
        }
        controller.Completed += result =>
        {
            Console.Error.WriteLine(OutcomeLine(result));
            if (plan.StatsPath is { } stats) SnapshotStatsFile.Append(stats, result);
            if (plan.ExitAfter) vm.RequestStop(new VmExitStatus(VmStopReason.AfterSnapshot, result.Succeeded ? 0u : 1u, result.Error));
        };
        vm.GuestSnapshotRequested += () => vm.Loop.Post(Start);
        if (plan.Delay is { } delay) vm.Loop.Schedule(delay, Start);
        triggers._registrations.Add(PosixSignalRegistration.Create((PosixSignal)SIGUSR1, ctx => { ctx.Cancel = true; vm.Loop.Post(Start); }));
        triggers._registrations.Add(PosixSignalRegistration.Create((PosixSignal)SIGUSR2, ctx => { ctx.Cancel = true; vm.Loop.Post(() => controller.Cancel()); }));
        return triggers;
    }

    /// <summary>The one line a finished snapshot gets, whatever the log level: the summary, or why there is none.</summary>
    internal static string OutcomeLine(SnapshotResult result) =>
        result.Succeeded ? "minivmm: " + result.Summary()
        : result.Cancelled ? $"minivmm: snapshot ({result.Engine}) cancelled; its partial output was removed"
        : $"minivmm: snapshot ({result.Engine}) failed: {result.Error}";

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
