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

    public void SetDirtyLogging(bool enabled) => inner.SetDirtyLogging(enabled);

    public void GetAndClearDirtyLog(int region, Span<ulong> bitmap) => inner.GetAndClearDirtyLog(region, bitmap);
}
