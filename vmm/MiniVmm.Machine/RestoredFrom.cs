using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine;

/// <summary>
/// What a VM was restored from: the snapshot (the tip of its chain) it continues, by path and by content, and how its
/// RAM came back (`eager`, `lazy` or `mmap`).
/// </summary>
public sealed record RestoredFrom(string Path, SnapshotParent Identity, string Memory, int Links)
{
    /// <summary>Every page was in RAM before the first instruction: writes can be tracked from the start.</summary>
    public bool LoadedEagerly => Memory == "eager";
}
