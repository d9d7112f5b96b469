using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot;

/// <summary>
/// What a snapshot engine needs from a running VM, and nothing more (implemented by the VM composition root). Pause,
/// capture and resume are called on the main-loop thread; memory is read from the engine's own threads.
/// </summary>
public interface ISnapshotSource
{
    GuestMemory Memory { get; }

    /// <summary>The VM configuration as recorded in the header (opaque to the engine).</summary>
    string DescribeConfig();

    /// <summary>
    /// Called before anything else (vCPUs running): makes guest RAM plain memory the engine may read and register with
    /// its own userfaultfd (a lazily restored VM finishes fetching its pages here).
    /// </summary>
    void PrepareMemory();

    /// <summary>Stops every vCPU outside KVM_RUN and lets devices settle. Throws if a vCPU does not stop in time.</summary>
    void Pause();

    /// <summary>vCPU, VM (irqchip, PIT, clock) and device state, captured while paused.</summary>
    IReadOnlyList<StateSection> CaptureState();

    /// <summary>
    /// The start bottom-half: queues the resume of the vCPUs on the main loop (it runs once the caller, itself on the
    /// main loop, returns). <paramref name="onResumed"/> runs right after the vCPUs were released.
    /// </summary>
    void ScheduleResume(Action onResumed);

    /// <summary>Resumes at once (StopAndCopy and error paths).</summary>
    void Resume();

    /// <summary>
    /// From an engine thread (never the main loop): pauses the vCPUs, runs <paramref name="action"/>, resumes them, and
    /// returns true; false, without running it, when that could not start within <paramref name="timeout"/> (the VM is
    /// stopping). Exceptions of the action propagate after the resume.
    /// </summary>
    bool TryRunPaused(Action action, TimeSpan timeout)
    {
        Pause();
        try { action(); }
        finally { Resume(); }
        return true;
    }

    /// <summary>Turns KVM dirty-page logging on or off for every memory region.</summary>
    void SetDirtyLogging(bool enabled);

    /// <summary>Fetches and clears KVM's dirty bitmap of a region (one bit per 4 KiB page) into <paramref name="bitmap"/>.</summary>
    void GetAndClearDirtyLog(int region, Span<ulong> bitmap);
}
