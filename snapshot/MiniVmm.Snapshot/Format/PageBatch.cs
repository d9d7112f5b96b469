using System.IO.Hashing;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// Shared front half of both sinks: checks the arguments, copies the caller's pages (possibly live guest memory) into a
/// private buffer once, then classifies them as zero or not and hashes the non-zero ones from that copy, so what is
/// stored, what is checksummed and what is counted as zero are the same bytes. One instance per thread, reused, so the
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

    public static long CheckArguments(IReadOnlyList<SnapshotRegion> regions, int region, long firstPage, int length)
    {
        if ((uint)region >= (uint)regions.Count)
            throw new ArgumentOutOfRangeException(nameof(region), region, $"there are {regions.Count} regions");
        if (length % SnapshotFormat.PageSize != 0)
            throw new ArgumentException($"page data length {length} is not a multiple of {SnapshotFormat.PageSize}", nameof(length));
        long count = length / SnapshotFormat.PageSize;
        long pages = regions[region].PageCount;
        if (firstPage < 0 || firstPage > pages || count > pages - firstPage)
            throw new ArgumentOutOfRangeException(nameof(firstPage), firstPage,
                $"pages {firstPage}..{firstPage + count} are outside region {region} ({pages} pages)");
        return count;
    }

    /// <summary>Loads up to <see cref="MaxPages"/> pages from <paramref name="source"/> (a whole number of pages).</summary>
    public void Load(long firstPage, ReadOnlySpan<byte> source)
    {
        FirstPage = firstPage;
        Count = source.Length / SnapshotFormat.PageSize;
        source.CopyTo(_buffer);
        for (int i = 0; i < Count; i++)
        {
            var page = Page(i);
            _zero[i] = page.IndexOfAnyExcept((byte)0) < 0;
            _sums[i] = _zero[i] ? 0 : XxHash3.HashToUInt64(page);
        }
    }

    public ReadOnlySpan<byte> Page(int i) => _buffer.AsSpan(i * SnapshotFormat.PageSize, SnapshotFormat.PageSize);
    public ReadOnlySpan<byte> Pages(int start, int count) =>
        _buffer.AsSpan(start * SnapshotFormat.PageSize, count * SnapshotFormat.PageSize);
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
