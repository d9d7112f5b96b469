using MiniVmm.Core.Runtime;
namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// Who holds the vCPUs paused: the user (QMP `stop`) and/or a snapshot engine (its freeze, or all of stop-and-copy).
/// The vCPUs run only when nobody holds them, so `cont` during a stop-and-copy cannot release a half-copied guest, and a
/// snapshot of a stopped VM leaves it stopped (as QEMU does). Safe from any thread: the dirty-log engine pauses from
/// its own worker, the monitor from the main loop.
/// </summary>
public sealed class VmRunState(Vm vm)
{
    /// <summary>How long a pause may take before it is reported as failed (the engines use the same bound).</summary>
    public static readonly TimeSpan PauseTimeout = TimeSpan.FromSeconds(2);

    private readonly object _gate = new();
    private bool _userPaused;
    private bool _snapshotPaused;
    private bool _prelaunch;

    public bool IsUserPaused { get { lock (_gate) return _userPaused; } }

    /// <summary>QMP's RunState name: running, paused, finish-migrate (a snapshot holds the vCPUs) or shutdown.</summary>
    public string Status
    {
        get
        {
            if (vm.IsStopping) return "shutdown";
            lock (_gate) return _prelaunch ? "prelaunch" : _userPaused ? "paused" : _snapshotPaused ? "finish-migrate" : "running";
        }
    }

    /// <summary>
    /// The VM is started with its vCPUs held (`--paused`, QEMU's -S): a user's hold, so `cont` releases it and a
    /// snapshot leaves it held. QMP reports "prelaunch" until the first `cont`. Call before <see cref="Vm.Run"/>.
    /// </summary>
    public void HoldFromStart()
    {
        lock (_gate) _userPaused = _prelaunch = true;
    }

    /// <summary>The user's `stop`. False when already stopped. Throws TimeoutException when a vCPU does not stop.</summary>
    public bool StopByUser()
    {
        lock (_gate)
        {
            if (_userPaused) return false;
            if (!_snapshotPaused) PauseOrUndo();
            _userPaused = true;
            return true;
        }
    }

    /// <summary>The user's `cont`. False when not stopped by the user. The vCPUs stay paused while a snapshot holds them.</summary>
    public bool ContinueByUser()
    {
        lock (_gate)
        {
            if (!_userPaused) return false;
            _userPaused = _prelaunch = false;
            if (!_snapshotPaused) vm.ResumeVcpus();
            return true;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> with every vCPU out of the guest (the monitor's register and memory views): a
    /// running VM is paused for just that long, a paused one stays as it is. Throws TimeoutException when a vCPU does
    /// not stop.
    /// </summary>
    public T WithVcpusOut<T>(Func<T> work)
    {
        lock (_gate)
        {
            bool pause = !_userPaused && !_snapshotPaused;
            if (pause) PauseOrUndo();
            try { return work(); }
            finally { if (pause) vm.ResumeVcpus(); }
        }
    }

    internal void AcquireForSnapshot()
    {
        lock (_gate)
        {
            bool pausedHere = !_userPaused && !_snapshotPaused;
            if (pausedHere) PauseOrUndo();
            // A vCPU that has stopped (the guest exited, the VM is shutting down) has no state left to capture.
            if (vm.VcpuThreads.FirstOrDefault(t => t.State == VcpuRunState.Stopped) is { } stopped)
            {
                if (pausedHere) vm.ResumeVcpus();
                throw new MiniVmm.Snapshot.Engines.SnapshotException($"the VM is stopping (vcpu{stopped.Index} has stopped)");
            }
            _snapshotPaused = true;
        }
    }

    /// <summary>Releases the snapshot's hold; harmless when it holds nothing (engines release on their error paths).</summary>
    internal void ReleaseForSnapshot()
    {
        lock (_gate)
        {
            _snapshotPaused = false;
            if (!_userPaused) vm.ResumeVcpus();
        }
    }

    /// <summary>Pauses every vCPU; if one does not stop in time, releases the others so none stays paused by accident.</summary>
    private void PauseOrUndo()
    {
        try { vm.PauseVcpus(PauseTimeout); }
        catch
        {
            vm.ResumeVcpus();
            throw;
        }
    }
}
