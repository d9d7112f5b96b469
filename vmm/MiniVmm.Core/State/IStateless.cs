namespace MiniVmm.Core.State;

/// <summary>
/// A bus device that keeps no guest-visible state, declared so by its author: a snapshot stores nothing for it and a
/// restore builds it fresh. The device manager accepts a bus device only if it is <see cref="IPersistent"/> or this,
/// so a device cannot be left out of snapshots by accident.
/// </summary>
public interface IStateless
{
    /// <summary>Why nothing needs saving (shown by the bus audit and in logs), e.g. "status registers are constants".</summary>
    static abstract string StatelessReason { get; }
}
