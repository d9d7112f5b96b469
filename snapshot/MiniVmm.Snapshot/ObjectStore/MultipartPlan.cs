using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>
/// How the page-addressed file form of one snapshot is cut into multipart-upload parts. Part <c>i</c> (0-based; S3 part
/// number <c>i+1</c>) is the file range <c>[i*PartSize, (i+1)*PartSize)</c>, except the last one, which runs from
/// <c>LastPart*PartSize</c> to the end of the file (its tail: the rest of the memory, the state, the trailer and the end
/// marker). S3 requires every part but the last to be at least 5 MiB, and the last part is the only one whose length is
/// not known before the snapshot completes, so the parts wholly inside the memory area can be uploaded while the guest
/// runs; part 0 holds the header (final only at completion) and is uploaded last.
/// </summary>
public sealed class MultipartPlan
{
    /// <summary>S3's limits: at most 10000 parts, all but the last at least 5 MiB.</summary>
    public const int MaxParts = 10000;
    public const long MinPartSize = 5L << 20;
    public const long DefaultPartSize = 8L << 20;

    private readonly long[] _expectedPages;

    public MultipartPlan(IReadOnlyList<SnapshotRegion> regions, long partSize = DefaultPartSize)
    {
        RegionOffsets = SnapshotLayout.RegionOffsets(regions, out long memoryEnd);
        MemoryEnd = memoryEnd;
        // Large guests get larger parts so the trailer part still fits under the part-count limit.
        long needed = SnapshotFormat.AlignUp((memoryEnd + SnapshotLayout.TrailerLength(regions)) / (MaxParts - 100) + 1, SnapshotFormat.RegionAlignment);
        PartSize = Math.Max(Math.Max(partSize, MinPartSize), needed);
        LastPart = (int)(memoryEnd / PartSize);
        _expectedPages = new long[LastPart + 1];
        for (int r = 0; r < regions.Count; r++)
        {
            long start = RegionOffsets[r], end = start + (long)regions[r].Size;
            for (int part = (int)(start / PartSize); part <= LastPart && (long)part * PartSize < end; part++)
            {
                long from = Math.Max(start, (long)part * PartSize), to = Math.Min(end, (long)(part + 1) * PartSize);
                if (to > from) _expectedPages[part] += (to - from) / SnapshotFormat.PageSize;
            }
        }
    }

    public long PartSize { get; }
    public long MemoryEnd { get; }
    public long[] RegionOffsets { get; }

    /// <summary>Index of the last part (the tail, uploaded at completion). 0 when the whole file is one part.</summary>
    public int LastPart { get; }

    /// <summary>The part holding page <paramref name="page"/> of region <paramref name="region"/>.</summary>
    public int PartOf(int region, long page) => (int)Math.Min(LastPart, (RegionOffsets[region] + page * SnapshotFormat.PageSize) / PartSize);

    /// <summary>Guest pages inside the part: once every one of them was saved the part is final (unless saved again).</summary>
    public long PagesIn(int part) => _expectedPages[part];

    /// <summary>
    /// Whether the part may be uploaded before completion: wholly inside the memory area (so its length is fixed) and
    /// not the header's part.
    /// </summary>
    public bool IsEarly(int part) => part > 0 && part < LastPart;

    /// <summary>The file range of the part, given the final file length.</summary>
    public (long Offset, long Length) RangeOf(int part, long fileLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(part);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(part, LastPart);
        long offset = part * PartSize;
        long end = part == LastPart ? fileLength : offset + PartSize;
        if (end < offset) throw new ArgumentOutOfRangeException(nameof(fileLength), "the file ends before the part starts");
        return (offset, end - offset);
    }
}
