using MiniVmm.Core.Memory;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// The VM as the snapshot engines see it, with pause and resume routed through <see cref="VmRunState"/>: an engine's
/// resume releases only the engine's own hold, so a VM the user stopped stays stopped and a user `cont` cannot run
/// the guest while an engine still needs it paused. Everything else is the plain <see cref="VmSnapshotSource"/>.
/// </summary>
public sealed class RunStateSnapshotSource(VmSnapshotSource inner, VmRunState runState, Vm vm) : ISnapshotSource
{
    public GuestMemory Memory => inner.Memory;

    public string DescribeConfig() => inner.DescribeConfig();

    public void PrepareMemory() => inner.PrepareMemory();

    public void Pause() => runState.AcquireForSnapshot();

    public IReadOnlyList<StateSection> CaptureState() => inner.CaptureState();

    public void ScheduleResume(Action onResumed) => vm.Loop.Post(() =>
    {
        runState.ReleaseForSnapshot();
        onResumed();
    });

    public void Resume() => runState.ReleaseForSnapshot();

    public bool TryRunPaused(Action action, TimeSpan timeout)
    {
        if (vm.IsStopping || vm.Loop.IsLoopThread) return false;
        const int Pending = 0, Running = 1, Abandoned = 2;
        int state = Pending;
        Exception? error = null;
        var done = new ManualResetEventSlim();
        vm.Loop.Post(() =>
        {
            if (Interlocked.CompareExchange(ref state, Running, Pending) != Pending) return; // the caller gave up
            try
            {
                runState.AcquireForSnapshot();
                try { action(); }
                finally { runState.ReleaseForSnapshot(); }
            }
            catch (Exception e) { error = e; }
            finally { done.Set(); }
        });
        // The loop may have ended (the VM stops): then the bottom-half never runs, and the caller must not wait for it.
        if (!done.Wait(timeout) && Interlocked.CompareExchange(ref state, Abandoned, Pending) == Pending) return false;
        done.Wait();
        done.Dispose();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return true;
    }

    public void SetDirtyLogging(bool enabled) => inner.SetDirtyLogging(enabled);

    public void GetAndClearDirtyLog(int region, Span<ulong> bitmap) => inner.GetAndClearDirtyLog(region, bitmap);
}
