namespace MiniVmm.Snapshot.Format;

/// <summary>
/// Files a snapshot keeps beside itself that its state sections name (a VMM's capture of a drive at the freeze). The
/// format does not know what they hold, the VMM does: merge carries them into the merged snapshot, and prune deletes a
/// folded link's files with it.
/// </summary>
public interface ISnapshotSideFiles
{
    /// <summary>The files beside <paramref name="file"/> that belong to it (some may be missing).</summary>
    IReadOnlyList<string> Of(SnapshotFile file);

    /// <summary>
    /// Writes the side files of the merge of <paramref name="chain"/> into a snapshot at <paramref name="outputPath"/>
    /// (complete and in place when this returns) and returns the tip's state sections with their records pointing at
    /// them, plus the files written, which the caller deletes when the snapshot itself then fails.
    /// </summary>
    (IReadOnlyList<StateSection> Sections, IReadOnlyList<string> Files) Merge(SnapshotChain chain, string outputPath, bool fsync);
}

/// <summary>Snapshots without side files: merge keeps the tip's sections as they are.</summary>
public sealed class NoSideFiles : ISnapshotSideFiles
{
    public static readonly NoSideFiles Instance = new();

    public IReadOnlyList<string> Of(SnapshotFile file) => [];

    public (IReadOnlyList<StateSection> Sections, IReadOnlyList<string> Files) Merge(SnapshotChain chain, string outputPath, bool fsync) =>
        (chain.Tip.Sections, []);
}
