using MiniVmm.Core.Memory;

namespace MiniVmm.Snapshot.Incremental;

/// <summary>Picks how a VM's writes between snapshots are tracked on this host.</summary>
public static class ChangeTrackers
{
    /// <summary>An idle tracker for <paramref name="memory"/> (it starts with its first Resume); its owner disposes it.</summary>
    public static IDisposableChangeTracker Create(GuestMemory memory) =>
        throw new Engines.SnapshotException("change tracking is not available in this build");
}

/// <summary>A tracker with one owner that releases its kernel objects.</summary>
public interface IDisposableChangeTracker : IChangeTracker, IDisposable;
