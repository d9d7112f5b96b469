using System.Numerics;

namespace MiniVmm.Snapshot;

/// <summary>
/// One bit per 4 KiB page of a memory region: the pages written since a snapshot (the changed set of the next link).
/// Set/Get are thread-safe for any pages; the bulk operations are meant for one thread while no writer runs.
/// </summary>
public sealed class PageBitmap
{
    private readonly ulong[] _words;

    public PageBitmap(long pageCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pageCount);
        PageCount = pageCount;
        _words = new ulong[(pageCount + 63) / 64];
    }

    public long PageCount { get; }

    public bool Get(long page)
    {
        CheckPage(page);
        return (Volatile.Read(ref _words[page >> 6]) & (1UL << (int)(page & 63))) != 0;
    }

    public void Set(long page)
    {
        CheckPage(page);
        Interlocked.Or(ref _words[page >> 6], 1UL << (int)(page & 63));
    }

    public void Reset(long page)
    {
        CheckPage(page);
        Interlocked.And(ref _words[page >> 6], ~(1UL << (int)(page & 63)));
    }

    /// <summary>Sets [first, first+count) of the region.</summary>
    public void SetRange(long first, long count)
    {
        if (first < 0 || count < 0 || first > PageCount || count > PageCount - first)
            throw new ArgumentOutOfRangeException(nameof(first), $"pages {first}+{count} are outside a {PageCount}-page region");
        long end = first + count;
        for (long p = first; p < end;)
        {
            int bit = (int)(p & 63);
            int n = (int)Math.Min(64 - bit, end - p);
            ulong mask = n == 64 ? ulong.MaxValue : ((1UL << n) - 1) << bit;
            Interlocked.Or(ref _words[p >> 6], mask);
            p += n;
        }
    }

    public void SetAll() => SetRange(0, PageCount);

    /// <summary>Adds every page of <paramref name="other"/> (same region size).</summary>
    public void UnionWith(PageBitmap other)
    {
        if (other.PageCount != PageCount) throw new ArgumentException($"a {other.PageCount}-page bitmap cannot join a {PageCount}-page one");
        for (int i = 0; i < _words.Length; i++) Interlocked.Or(ref _words[i], Volatile.Read(ref other._words[i]));
    }

    public void Clear() => Array.Clear(_words);

    public long Count()
    {
        long n = 0;
        foreach (ulong w in _words) n += BitOperations.PopCount(w);
        return n;
    }

    /// <summary>The 64-page word holding page 64*<paramref name="word"/> onwards (bulk scans).</summary>
    public ulong Word(long word) => Volatile.Read(ref _words[word]);

    public long WordCount => _words.LongLength;

    public static PageBitmap[] ForRegions(IEnumerable<long> pageCounts) => pageCounts.Select(n => new PageBitmap(n)).ToArray();

    /// <summary>Adds each region's pages of <paramref name="source"/> to <paramref name="target"/> (one bitmap per region in both).</summary>
    public static void UnionInto(PageBitmap[] target, PageBitmap[] source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Length != target.Length) throw new ArgumentException($"{source.Length} bitmaps for {target.Length} regions", nameof(source));
        for (int ri = 0; ri < source.Length; ri++) target[ri].UnionWith(source[ri]);
    }

    private void CheckPage(long page)
    {
        if ((ulong)page >= (ulong)PageCount)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"the region has {PageCount} pages");
    }
}
