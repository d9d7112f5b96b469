using Microsoft.Extensions.Logging;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Engines;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Incremental;

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
    private readonly VmSnapshotSource _vmSource;
    private SnapshotJob? _job;
    private SnapshotDestination? _destination;
    private DriveSnapshot? _drives;
    // Incremental chains: the tracker records what the guest writes between snapshots; _parent is the last link this
    // VM can continue (the snapshot it last wrote, or the one it was eagerly restored from) and _parentPath its file
    // (or s3:// location).
    private IChangeTracker? _tracker;
    private SnapshotParent? _parent;
    private string? _parentPath;
    private string? _pendingPath;
    private string? _pendingTarget;
    // The drives' side of a chain: blocks written since the last snapshot, and their hashes at it.
    private readonly DriveLineage _driveLineage = new();

    public SnapshotController(Vm vm, ILoggerFactory loggers)
    {
        _vm = vm;
        _log = loggers.CreateLogger("MiniVmm.Snapshot");
        RunState = new VmRunState(vm);
        // Engines pause and resume through the run state, so a VM stopped by the monitor stays stopped.
        _vmSource = new VmSnapshotSource(vm);
        _source = new RunStateSnapshotSource(_vmSource, RunState, vm);
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

    /// <summary>How s3:// destinations are reached (the command line's --s3-profile and --s3-endpoint), whatever asks for the snapshot.</summary>
    public S3Access S3 { get; init; } = S3Access.Default;

    /// <summary>Who holds the vCPUs paused (the monitor's stop/cont and the engines share it).</summary>
    public VmRunState RunState { get; }

    /// <summary>Raised on the main loop when a snapshot has started, whatever asked for it (the monitor reports it).</summary>
    public event Action<SnapshotJob>? Started;

    /// <summary>Raised on the main loop when a snapshot ends (successfully or not).</summary>
    public event Action<SnapshotResult>? Completed;

    public SnapshotJob? CurrentJob => _job;

    /// <summary>How changes between snapshots are tracked (null until incremental snapshots were asked for).</summary>
    public string? ChangeTrackingMethod => _tracker?.Method;

    /// <summary>The link the next incremental snapshot would name as its parent (null: the next one is full).</summary>
    public SnapshotParent? NextParent => _tracker is { IsTracking: true } ? _parent : null;

    /// <summary>
    /// Call before the vCPUs first run, for a VM whose snapshots form a chain: a VM restored eagerly is tracked from
    /// now on, so its first snapshot is already an incremental link of the file it came from. Any other VM's first
    /// snapshot is a full one (lazily restored RAM is still being filled by its own userfaultfd, which tracking needs).
    /// </summary>
    public void StartChainFromRestore()
    {
        EnsureTracker();
        if (_vm.RestoredFrom is { LoadedEagerly: true } from)
        {
            if (!_tracker!.IsTracking) _tracker.Resume(PageBitmap.ForRegions(_vm.Memory.Regions.Select(r => r.PageCount)));
            _parent = from.Identity;
            _parentPath = MiniVmm.Snapshot.ObjectStore.ObjectUri.IsObjectUri(from.Path) ? from.Path : Path.GetFullPath(from.Path);
            _driveLineage.StartFromRestore(DriveSnapshot.WritableDrives(_vm), from.DriveHashes);
            _log.LogInformation("tracking writes since {Path} ({Method}): the next snapshot is an incremental link of it", from.Path, _tracker.Method);
        }
        else if (_vm.RestoredFrom is { } other)
            _log.LogInformation("the first snapshot of this VM is a full one: RAM restored with --memory {Mode} is not tracked from the start (use --memory eager)",
                other.Memory);
    }

    private void EnsureTracker()
    {
        if (_tracker is not null) return;
        var tracker = ChangeTrackers.Create(_vm.Memory, _source, out string? fallback);
        if (fallback is not null) _log.LogInformation("tracking changes with {Method}: {Why}", tracker.Method, fallback);
        _vm.Adopt((IDisposable)tracker); // disposed with the VM, after the vCPUs stopped and before RAM is unmapped
        _tracker = tracker;
    }

    /// <summary>
    /// Starts a snapshot to <paramref name="destination"/>; call on the main loop. False (with a log line) when one is
    /// running or it cannot start. With <paramref name="chain"/> the snapshot is an incremental link of the last one this
    /// VM wrote (or was restored from) whenever the writes since then were tracked, else a full one that starts tracking.
    /// </summary>
    public bool TryStart(string destination, SnapshotOptions options, out string? error, bool chain = false)
    {
        error = null;
        if (_job is not null) { error = "a snapshot is already in progress"; return false; }
        if (_vm.IsStopping) { error = "the VM is stopping"; return false; }
        try
        {
            _pendingPath = SnapshotDestination.FilePathOf(destination);
            _pendingTarget = _pendingPath ?? destination; // a link must not replace its parent, in a file or in the store
            var drives = DriveSnapshot.WritableDrives(_vm);
            bool writableDrives = drives.Count > 0;
            if (writableDrives && MiniVmm.Snapshot.ObjectStore.ObjectUri.IsObjectUri(destination))
                throw new ArgumentException("an s3:// snapshot cannot capture a writable drive yet: snapshot to a file, or attach the drives with readonly=on");
            if (writableDrives && _pendingPath is null)
                throw new ArgumentException("a VM with a writable drive snapshots to a file only, not exec: (the drive's content at the freeze goes to a file beside the snapshot)");
            if (chain) EnsureTracker();
            SnapshotParent? parent = null;
            if (_tracker is not null && options.Mode == SnapshotMode.WriteTracking)
            {
                parent = chain && _tracker.IsTracking ? _parent : null;
                if (parent is not null && (_pendingPath ?? destination) == _parentPath)
                    throw new ArgumentException($"'{destination}' is this link's parent: an incremental snapshot must not replace it (use a new name, e.g. 'vm-%n.mvs')");
                if (parent is not null && writableDrives && _driveLineage.WhyNotLinkable(drives) is { } why)
                {
                    _log.LogInformation("this snapshot is a full one: {Why}", why);
                    parent = null;
                }
                options = options with { ChangeTracker = _tracker, Incremental = parent is not null };
            }
            else if (chain)
                throw new ArgumentException("incremental snapshots need the write-tracking engine (--snapshot-mode write-tracking)");
            var engine = SnapshotEngines.For(options.Mode);
            var info = new SnapshotHeaderInfo(engine.Name, _source.DescribeConfig(), RecordedVmConfig.HostCpuModel(),
                _vm.Memory.Regions.Select(r => new SnapshotRegion(r.GuestAddress.Value, r.Size)).ToList())
            { Parent = parent };
            _destination = SnapshotDestination.Open(destination, info, options.StallTimeout, S3);
            var sink = _destination.Sink;
            if (writableDrives)
            {
                _drives = DriveSnapshot.Prepare(_vm, _pendingPath!, _tracker is not null ? _driveLineage : null, link: parent is not null,
                    dropOneChangedBlock: options.UnsafeDropOneChangedDriveBlock);
                sink = new DriveCapturingSink(sink, _drives!);
                _vmSource.Drives = _drives;
            }
            _vm.Control.SetStatus(StatusRunning);
            _job = engine.Start(_source, sink, options, _log);
        }
        catch (Exception e) when (e is SnapshotException or ChangeTrackingException or IOException or UnauthorizedAccessException or ArgumentException
                                      or TimeoutException or KvmSharp.LinuxException or SnapshotFormatException)
        {
            error = e.Message;
            _vmSource.Drives = null;
            _drives?.Dispose();
            _drives = null;
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

    /// <summary>
    /// After a write-tracking snapshot of a tracked VM: a written link becomes the next parent. A failed one keeps the
    /// old parent while tracking went on (the engine merged the link's pages back); when tracking ended with a failure,
    /// or another engine ran, the chain cannot continue and the next snapshot is a full one.
    /// </summary>
    private void NoteChainLink(SnapshotResult result)
    {
        if (_tracker is null) return;
        // Only a write-tracking snapshot hands the RAM over and back; the other engines may toggle KVM's dirty log
        // under the fallback tracker, so what it saw since the parent is no longer known to be complete.
        if (!_tracker.IsTracking || result.Engine != "write-tracking")
        {
            if (_parent is not null)
                _log.LogWarning("this snapshot does not continue the chain; the next snapshot is a full one");
            _parent = null;
            _parentPath = null;
            return;
        }
        if (!result.Succeeded) return;
        _parent = new SnapshotParent(result.SnapshotId, result.TrailerChecksum);
        _parentPath = _pendingTarget;
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
        if (_drives is { } drives)
        {
            result = result with { DriveBytes = drives.BytesStored, DriveBlocksCopiedBeforeWrite = drives.CopiedBeforeWrite, DriveLinkPages = drives.LinkPages };
            _vmSource.Drives = null;
            drives.Dispose();
            _drives = null;
        }
        if (processError is not null && result.Succeeded)
            result = result with { Succeeded = false, Error = processError };
        _destination = null;
        _job = null;
        NoteChainLink(result);
        _vm.Control.SetStatus(result.Succeeded ? StatusDone : StatusFailed);
        // At debug level only: whoever started it (the CLI, the monitor's client) reports the outcome once.
        _log.LogDebug("{Details}", result.Details());
        Completed?.Invoke(result);
    }
}
