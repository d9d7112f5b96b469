using Microsoft.Extensions.Logging;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Engines;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// Takes snapshots of a running VM on request (timer, SIGUSR1, the guest's control port, the API): one at a time, on
/// the main loop. Reports each outcome through <see cref="Completed"/> and the control port's status register.
/// A failed or cancelled snapshot leaves no output and the VM running.
/// </summary>
public sealed class SnapshotController
{
    /// <summary>Control-port status values the guest can read.</summary>
    public const uint StatusIdle = 0, StatusRunning = 1, StatusDone = 2, StatusFailed = 3;

    private readonly Vm _vm;
    private readonly ILogger _log;
    private readonly ISnapshotSource _source;
    private SnapshotJob? _job;
    private SnapshotDestination? _destination;

    public SnapshotController(Vm vm, ILoggerFactory loggers)
    {
        _vm = vm;
        _log = loggers.CreateLogger("MiniVmm.Snapshot");
        RunState = new VmRunState(vm);
        // Engines pause and resume through the run state, so a VM stopped by the monitor stays stopped.
        _source = new RunStateSnapshotSource(new VmSnapshotSource(vm), RunState, vm);
        vm.ShuttingDown += FinishBeforeShutdown;
    }

    /// <summary>Largest wait for a running snapshot when the VM stops under it (the vCPUs are still there).</summary>
    public static readonly TimeSpan ShutdownWait = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The VM is stopping (the guest exited, or a signal) while a snapshot runs: let it finish — guest RAM is still
    /// mapped and no vCPU can be left blocked — then report it, since the main loop will not run its completion.
    /// </summary>
    private void FinishBeforeShutdown()
    {
        if (_job is not { } job) return;
        if (!job.Completion.Wait(ShutdownWait))
        {
            job.Cancel();
            job.Completion.Wait(ShutdownWait);
        }
        if (job.Completion.IsCompletedSuccessfully && _job == job) OnFinished(job.Completion.Result);
    }

    /// <summary>Who holds the vCPUs paused (the monitor's stop/cont and the engines share it).</summary>
    public VmRunState RunState { get; }

    /// <summary>Raised on the main loop when a snapshot has started, whatever asked for it (the monitor reports it).</summary>
    public event Action<SnapshotJob>? Started;

    /// <summary>Raised on the main loop when a snapshot ends (successfully or not).</summary>
    public event Action<SnapshotResult>? Completed;

    public SnapshotJob? CurrentJob => _job;

    /// <summary>Starts a snapshot to <paramref name="destination"/>; call on the main loop. False (with a log line) when one is running or it cannot start.</summary>
    public bool TryStart(string destination, SnapshotOptions options, out string? error)
    {
        error = null;
        if (_job is not null) { error = "a snapshot is already in progress"; return false; }
        if (_vm.IsStopping) { error = "the VM is stopping"; return false; }
        try
        {
            var engine = SnapshotEngines.For(options.Mode);
            var info = new SnapshotHeaderInfo(engine.Name, _source.DescribeConfig(), RecordedVmConfig.HostCpuModel(),
                _vm.Memory.Regions.Select(r => new SnapshotRegion(r.GuestAddress, r.Size)).ToList());
            _destination = SnapshotDestination.Open(destination, info, options.StallTimeout);
            _vm.Control.SetStatus(StatusRunning);
            _job = engine.Start(_source, _destination.Sink, options, _log);
        }
        catch (Exception e) when (e is SnapshotException or IOException or UnauthorizedAccessException or ArgumentException
                                      or TimeoutException or KvmSharp.KvmException or SnapshotFormatException)
        {
            error = e.Message;
            _destination?.Sink.Abort();
            _destination?.FinishProcess(false);
            _destination?.Dispose();
            _destination = null;
            _job = null;
            _vm.Control.SetStatus(StatusFailed);
            _log.LogDebug("snapshot did not start: {Error}", e.Message); // the caller reports it to the user
            return false;
        }
        var job = _job;
        job.WhenFinished(r => _vm.Loop.Post(() => OnFinished(r)));
        Started?.Invoke(job);
        return true;
    }

    /// <summary>Cancels the running snapshot, if any.</summary>
    public bool Cancel()
    {
        if (_job is null) return false;
        _job.Cancel();
        return true;
    }

    private void OnFinished(SnapshotResult result)
    {
        if (_destination is not { } destination) return; // already reported (shutdown raced the posted completion)
        string? processError = destination.FinishProcess(result.Succeeded);
        destination.Dispose();
        if (processError is not null && result.Succeeded)
            result = result with { Succeeded = false, Error = processError };
        _destination = null;
        _job = null;
        _vm.Control.SetStatus(result.Succeeded ? StatusDone : StatusFailed);
        // At debug level only: whoever started it (the CLI, the monitor's client) reports the outcome once.
        _log.LogDebug("{Summary}", result.Summary());
        Completed?.Invoke(result);
    }
}
