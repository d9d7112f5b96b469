using System.IO.Hashing;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// Shared front half of both sinks: checks the arguments, copies the caller's pages (possibly live guest memory) into a
/// private buffer once (unless they are a private copy already), then classifies them as zero or not and hashes the
/// non-zero ones from those bytes, so what is stored, what is checksummed and what is counted as zero are the same bytes. One instance per thread, reused, so the
/// fault handler's path does not allocate.
/// </summary>
internal sealed class PageBatch
{
    [ThreadStatic] private static PageBatch? t_current;

    public static PageBatch ForCurrentThread() => t_current ??= new PageBatch();

    public const int MaxPages = 64;
    public static readonly byte[] ZeroPage = new byte[SnapshotFormat.PageSize];

    /// <summary>XXH3-64 of an all-zero page: what an incremental link records for a changed page that is zero now.</summary>
    public static readonly ulong ZeroPageChecksum = System.IO.Hashing.XxHash3.HashToUInt64(ZeroPage);

    private readonly byte[] _buffer = new byte[MaxPages * SnapshotFormat.PageSize];
    private readonly bool[] _zero = new bool[MaxPages];
    private readonly ulong[] _sums = new ulong[MaxPages];

    public int Count { get; private set; }
    public long FirstPage { get; private set; }

    /// <summary><see cref="MaxPages"/> zero pages: what a sink without a zero-run path of its own is handed instead.</summary>
    public static readonly byte[] ZeroPages = new byte[MaxPages * SnapshotFormat.PageSize];

    public static long CheckArguments(IReadOnlyList<SnapshotRegion> regions, int region, long firstPage, int length)
    {
        if (length % SnapshotFormat.PageSize != 0)
            throw new ArgumentException($"page data length {length} is not a multiple of {SnapshotFormat.PageSize}", nameof(length));
        long count = length / SnapshotFormat.PageSize;
        CheckRange(regions, region, firstPage, count);
        return count;
    }

    /// <summary>Throws unless pages [firstPage, firstPage+count) lie inside region <paramref name="region"/>.</summary>
    public static void CheckRange(IReadOnlyList<SnapshotRegion> regions, int region, long firstPage, long count)
    {
        if ((uint)region >= (uint)regions.Count)
            throw new ArgumentOutOfRangeException(nameof(region), region, $"there are {regions.Count} regions");
        long pages = regions[region].PageCount;
        if (count < 0 || firstPage < 0 || firstPage > pages || count > pages - firstPage)
            throw new ArgumentOutOfRangeException(nameof(firstPage), firstPage,
                $"pages {firstPage}..{firstPage + count} are outside region {region} ({pages} pages)");
    }

    /// <summary>
    /// Loads up to <see cref="MaxPages"/> pages from <paramref name="source"/> (a whole number of pages) and returns the
    /// bytes to store: a private copy, or with <paramref name="inPlace"/> (a private buffer nothing changes during the
    /// call) <paramref name="source"/> itself, classified and hashed where it is.
    /// </summary>
    public ReadOnlySpan<byte> Load(long firstPage, ReadOnlySpan<byte> source, bool inPlace = false)
    {
        FirstPage = firstPage;
        Count = source.Length / SnapshotFormat.PageSize;
        ReadOnlySpan<byte> data = source;
        if (!inPlace)
        {
            source.CopyTo(_buffer);
            data = _buffer.AsSpan(0, source.Length);
        }
        for (int i = 0; i < Count; i++)
        {
            var page = data.Slice(i * SnapshotFormat.PageSize, SnapshotFormat.PageSize);
            _zero[i] = page.IndexOfAnyExcept((byte)0) < 0;
            _sums[i] = _zero[i] ? 0 : XxHash3.HashToUInt64(page);
        }
        return data;
    }

    /// <summary>Pages [start, start+count) of the bytes <see cref="Load"/> returned.</summary>
    public static ReadOnlySpan<byte> Pages(ReadOnlySpan<byte> data, int start, int count) =>
        data.Slice(start * SnapshotFormat.PageSize, count * SnapshotFormat.PageSize);
    public bool IsZero(int i) => _zero[i];
    public ulong Checksum(int i) => _sums[i];

    /// <summary>End (exclusive) of the run of pages starting at <paramref name="start"/> that share its zero-ness.</summary>
    public int RunEnd(int start)
    {
        int end = start + 1;
        while (end < Count && _zero[end] == _zero[start]) end++;
        return end;
    }
}
