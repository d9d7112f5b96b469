namespace MiniVmm.Snapshot.Format;

/// <summary>
/// A writer's record of one region: present-page bitmap and per-page XXH3-64 of the content last written. Storage is
/// allocated lazily in chunks of 4096 pages (16 MiB of guest RAM), so a large sparse region costs little. Safe for
/// concurrent updates of distinct pages.
/// </summary>
internal sealed class PageTable
{
    private const int ChunkShift = 12;
    private const int ChunkPages = 1 << ChunkShift;

    private sealed class Chunk
    {
        public readonly ulong[] Bits = new ulong[ChunkPages / 64];
        public readonly ulong[] Sums = new ulong[ChunkPages];
    }

    private readonly Chunk?[] _chunks;
    private long _present;

    public PageTable(long pageCount)
    {
        PageCount = pageCount;
        _chunks = new Chunk?[(pageCount + ChunkPages - 1) >> ChunkShift];
    }

    public long PageCount { get; }
    public long PresentCount => Volatile.Read(ref _present);

    private Chunk GetOrAdd(long page)
    {
        long c = page >> ChunkShift;
        var chunk = Volatile.Read(ref _chunks[c]);
        if (chunk is not null) return chunk;
        var created = new Chunk();
        return Interlocked.CompareExchange(ref _chunks[c], created, null) ?? created;
    }

    public bool IsPresent(long page)
    {
        var chunk = Volatile.Read(ref _chunks[page >> ChunkShift]);
        int i = (int)(page & (ChunkPages - 1));
        return chunk is not null && (Volatile.Read(ref chunk.Bits[i >> 6]) & (1UL << (i & 63))) != 0;
    }

    public void MarkPresent(long page, ulong checksum)
    {
        var chunk = GetOrAdd(page);
        int i = (int)(page & (ChunkPages - 1));
        Volatile.Write(ref chunk.Sums[i], checksum);
        ulong bit = 1UL << (i & 63);
        if ((Interlocked.Or(ref chunk.Bits[i >> 6], bit) & bit) == 0) Interlocked.Increment(ref _present);
    }

    /// <summary>Marks a page absent; returns whether it was present.</summary>
    public bool MarkAbsent(long page)
    {
        var chunk = Volatile.Read(ref _chunks[page >> ChunkShift]);
        if (chunk is null) return false;
        int i = (int)(page & (ChunkPages - 1));
        ulong bit = 1UL << (i & 63);
        if ((Interlocked.And(ref chunk.Bits[i >> 6], ~bit) & bit) == 0) return false;
        Volatile.Write(ref chunk.Sums[i], 0);
        Interlocked.Decrement(ref _present);
        return true;
    }

    public ulong Checksum(long page)
    {
        var chunk = Volatile.Read(ref _chunks[page >> ChunkShift]);
        return chunk is null ? 0 : Volatile.Read(ref chunk.Sums[(int)(page & (ChunkPages - 1))]);
    }

    /// <summary>Copies bitmap words starting at <paramref name="firstWord"/>.</summary>
    public void CopyWords(long firstWord, Span<ulong> destination)
    {
        for (int k = 0; k < destination.Length; k++)
        {
            long w = firstWord + k;
            var chunk = Volatile.Read(ref _chunks[w >> (ChunkShift - 6)]);
            destination[k] = chunk is null ? 0 : Volatile.Read(ref chunk.Bits[(int)(w & (ChunkPages / 64 - 1))]);
        }
    }

    public void CopySums(long firstPage, Span<ulong> destination)
    {
        for (int k = 0; k < destination.Length; k++) destination[k] = Checksum(firstPage + k);
    }
}
