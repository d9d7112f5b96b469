using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine;

/// <summary>
/// What a VM was restored from: the snapshot (the tip of its chain) it continues, by path and by content, and how its
/// RAM came back (`eager`, `lazy` or `mmap`).
/// </summary>
public sealed record RestoredFrom(string Path, SnapshotParent Identity, string Memory, int Links)
{
    /// <summary>
    /// Per writable drive slot, each block's hash as restore found (or wrote) it, which is the snapshot's content: an
    /// incremental link of this VM copies only the blocks written since. Empty when the drives were not checked.
    /// </summary>
    public IReadOnlyDictionary<int, ulong[]> DriveHashes { get; init; } = new Dictionary<int, ulong[]>();

    /// <summary>Every page was in RAM before the first instruction: writes can be tracked from the start.</summary>
    public bool LoadedEagerly => Memory == "eager";
}
