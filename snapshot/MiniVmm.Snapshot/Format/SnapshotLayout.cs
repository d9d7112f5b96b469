namespace MiniVmm.Snapshot.Format;

/// <summary>Where the writer puts things. Readers do not recompute it: they validate what the header says.</summary>
internal static class SnapshotLayout
{
    /// <summary>Region page areas, each aligned to <see cref="SnapshotFormat.RegionAlignment"/>, after the header area.</summary>
    public static long[] RegionOffsets(IReadOnlyList<SnapshotRegion> regions, out long memoryEnd)
    {
        var offsets = new long[regions.Count];
        long next = SnapshotFormat.AlignUp(SnapshotFormat.HeaderAreaSize, SnapshotFormat.RegionAlignment);
        memoryEnd = SnapshotFormat.HeaderAreaSize;
        for (int i = 0; i < regions.Count; i++)
        {
            offsets[i] = next;
            memoryEnd = next + (long)regions[i].Size;
            next = SnapshotFormat.AlignUp(memoryEnd, SnapshotFormat.RegionAlignment);
        }
        return offsets;
    }

    public static long BitmapWords(long pageCount) => (pageCount + 63) >> 6;

    /// <summary>Magic, region count, reserved, state checksum, snapshot id.</summary>
    public const int TrailerFixedSize = 8 + 4 + 4 + 8 + SnapshotFormat.SnapshotIdSize;
    public const int TrailerRegionFixedSize = 16;

    /// <summary>Trailer bytes (without the completion marker) of a full snapshot: a checksum slot for every page.</summary>
    public static long TrailerLength(IReadOnlyList<SnapshotRegion> regions)
    {
        long length = TrailerFixedSize + 8;
        foreach (var r in regions) length += TrailerRegionFixedSize + BitmapWords(r.PageCount) * 8 + r.PageCount * 8;
        return length;
    }

    /// <summary>
    /// Trailer bytes of an incremental link, which lists checksums of its present pages only (a link of 1 % of a
    /// large guest would otherwise carry a checksum slot for every page: 8 bytes per 4 KiB, 0.2 % of all RAM).
    /// </summary>
    public static long SparseTrailerLength(IReadOnlyList<SnapshotRegion> regions, IReadOnlyList<long> presentPages)
    {
        long length = TrailerFixedSize + 8;
        for (int i = 0; i < regions.Count; i++) length += TrailerRegionFixedSize + BitmapWords(regions[i].PageCount) * 8 + presentPages[i] * 8;
        return length;
    }

    /// <summary>The smallest trailer an incremental link of these regions can have (no page present).</summary>
    public static long MinSparseTrailerLength(IReadOnlyList<SnapshotRegion> regions) => SparseTrailerLength(regions, new long[regions.Count]);
}
