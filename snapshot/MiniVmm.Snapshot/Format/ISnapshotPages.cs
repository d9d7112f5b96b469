namespace MiniVmm.Snapshot.Format;

/// <summary>
/// The guest pages of a snapshot as restore reads them: one file (<see cref="SnapshotFile"/>) or an incremental chain
/// resolved to one image (<see cref="SnapshotChain"/>). Page numbers are per region; absent pages read as zeros.
/// </summary>
public interface ISnapshotPages
{
    IReadOnlyList<SnapshotRegion> Regions { get; }

    /// <summary>Whether the page has stored content (false: it is zero).</summary>
    bool IsPresent(int region, long page);

    /// <summary>Reads <c>destination.Length / 4096</c> consecutive pages; a checksum mismatch is a <see cref="SnapshotFormatException"/>.</summary>
    void ReadPages(int region, long firstPage, Span<byte> destination, bool verifyChecksum = true);
}
