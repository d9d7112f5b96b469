using System.Buffers.Binary;
using System.IO.Hashing;
using System.Numerics;

namespace MiniVmm.Snapshot.Format;

internal delegate void ChunkSink(ReadOnlySpan<byte> chunk);

/// <summary>Receives a trailer as it is parsed (the file reader keeps it; the converter compares it).</summary>
internal interface ITrailerVisitor
{
    void Region(int region, long pageCount, ulong[] bitmap, long presentCount);
    void Checksums(int region, long firstPage, ReadOnlySpan<ulong> checksums);
}

/// <summary>
/// The trailer: <c>magic "MVTRAILR", u32 region count, u32 reserved, u64 XXH3 of the state section, u8[16] snapshot id</c>
/// (the header's), then per region
/// <c>u64 page count, u64 present count, u64 bitmap[(pages+63)/64] (bit i of word w = page 64w+i),
/// u64 checksum[pages] (XXH3-64 of each present page, 0 for absent pages)</c>, then <c>u64 XXH3</c> of all the trailer
/// bytes before it.
/// </summary>
internal static class TrailerCodec
{
    private const int BlockWords = 8192;

    /// <summary>
    /// Streams the trailer to <paramref name="sink"/> in pieces; returns its own checksum. <paramref name="sparse"/>
    /// (incremental links): the checksums of present pages only, in page order, instead of one slot per page.
    /// </summary>
    public static ulong Write(IReadOnlyList<SnapshotRegion> regions, PageTable[] tables, ulong stateHash, Guid snapshotId, ChunkSink sink,
        bool sparse = false)
    {
        var hash = new XxHash3();
        var buffer = new byte[BlockWords * 8];
        int used = 0;

        void Flush()
        {
            if (used == 0) return;
            hash.Append(buffer.AsSpan(0, used));
            sink(buffer.AsSpan(0, used));
            used = 0;
        }
        void U64(ulong v)
        {
            if (used + 8 > buffer.Length) Flush();
            BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(used), v);
            used += 8;
        }

        SnapshotFormat.TrailerMagic.CopyTo(buffer);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(8), (uint)regions.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(12), 0);
        used = 16;
        U64(stateHash);
        SnapshotFormat.WriteId(snapshotId, buffer.AsSpan(used));
        used += SnapshotFormat.SnapshotIdSize;
        var words = new ulong[BlockWords];
        for (int r = 0; r < regions.Count; r++)
        {
            var table = tables[r];
            U64((ulong)table.PageCount);
            U64((ulong)table.PresentCount);
            long wordCount = SnapshotLayout.BitmapWords(table.PageCount);
            for (long w = 0; w < wordCount; w += BlockWords)
            {
                var block = words.AsSpan(0, (int)Math.Min(BlockWords, wordCount - w));
                table.CopyWords(w, block);
                foreach (var v in block) U64(v);
            }
            if (sparse)
            {
                for (long w = 0; w < wordCount; w += BlockWords)
                {
                    var block = words.AsSpan(0, (int)Math.Min(BlockWords, wordCount - w));
                    table.CopyWords(w, block);
                    for (int k = 0; k < block.Length; k++)
                        for (ulong bits = block[k]; bits != 0; bits &= bits - 1)
                            U64(table.Checksum((w + k) * 64 + BitOperations.TrailingZeroCount(bits)));
                }
                continue;
            }
            for (long p = 0; p < table.PageCount; p += BlockWords)
            {
                var block = words.AsSpan(0, (int)Math.Min(BlockWords, table.PageCount - p));
                table.CopySums(p, block);
                foreach (var v in block) U64(v);
            }
        }
        Flush();
        ulong own = hash.GetCurrentHashAsUInt64();
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, own);
        sink(buffer.AsSpan(0, 8));
        return own;
    }

    /// <summary>
    /// Parses and validates a trailer of exactly <see cref="SnapshotLayout.TrailerLength"/> bytes that must belong to the
    /// snapshot <paramref name="snapshotId"/> (the header's); returns the state checksum, and the trailer's own checksum
    /// in <paramref name="trailerChecksum"/> (what an incremental child names its parent by).
    /// </summary>
    public static ulong Read(SequentialReader r, IReadOnlyList<SnapshotRegion> regions, Guid snapshotId, ITrailerVisitor visitor, string what,
        out ulong trailerChecksum, bool sparse = false)
    {
        string ctx = $"{what} trailer";
        r.StartHash();
        Span<byte> magic = stackalloc byte[8];
        r.ReadExactly(magic, "trailer magic");
        if (!magic.SequenceEqual(SnapshotFormat.TrailerMagic))
            throw new SnapshotFormatException($"{ctx} is corrupt (bad trailer magic)");
        uint count = r.U32("region count");
        if (count != regions.Count)
            throw new SnapshotFormatException($"{ctx} is corrupt: it lists {count} regions, the header {regions.Count}");
        if (r.U32("reserved") != 0) throw new SnapshotFormatException($"{ctx} is corrupt: reserved field is not zero");
        ulong stateHash = r.U64("state checksum");
        Span<byte> idBytes = stackalloc byte[SnapshotFormat.SnapshotIdSize];
        r.ReadExactly(idBytes, "snapshot id");
        var id = SnapshotFormat.ReadId(idBytes);
        var block = new ulong[BlockWords];
        for (int g = 0; g < regions.Count; g++)
        {
            long pages = regions[g].PageCount;
            ulong declared = r.U64($"region {g} page count");
            if (declared != (ulong)pages)
                throw new SnapshotFormatException($"{ctx} is corrupt: region {g} has {declared} pages, the header says {pages}");
            ulong present = r.U64($"region {g} present count");
            if (present > (ulong)pages)
                throw new SnapshotFormatException($"{ctx} is corrupt: region {g} claims {present} present pages of {pages}");
            var bitmap = new ulong[SnapshotLayout.BitmapWords(pages)];
            r.ReadWords(bitmap, $"region {g} bitmap");
            long popcount = 0;
            foreach (var w in bitmap) popcount += BitOperations.PopCount(w);
            if ((pages & 63) != 0 && (bitmap[^1] >> (int)(pages & 63)) != 0)
                throw new SnapshotFormatException($"{ctx} is corrupt: region {g} bitmap has bits past its last page");
            if (popcount != (long)present)
                throw new SnapshotFormatException(
                    $"{ctx} is corrupt: region {g} bitmap has {popcount} pages set but claims {present}");
            visitor.Region(g, pages, bitmap, (long)present);
            if (sparse)
            {
                // Present pages' checksums in page order (read in bulk per block), handed on as dense blocks (0 for
                // absent pages).
                var packed = new ulong[BlockWords];
                for (long p = 0; p < pages; p += BlockWords)
                {
                    var sums = block.AsSpan(0, (int)Math.Min(BlockWords, pages - p));
                    int inBlock = 0;
                    for (long w = p >> 6; w < (p + sums.Length + 63) >> 6; w++) inBlock += BitOperations.PopCount(bitmap[w]);
                    var listed = packed.AsSpan(0, inBlock);
                    r.ReadWords(listed, $"region {g} checksums");
                    int next = 0;
                    for (int k = 0; k < sums.Length; k++)
                    {
                        long page = p + k;
                        sums[k] = (bitmap[page >> 6] & (1UL << (int)(page & 63))) == 0 ? 0 : listed[next++];
                    }
                    visitor.Checksums(g, p, sums);
                }
                continue;
            }
            for (long p = 0; p < pages; p += BlockWords)
            {
                var sums = block.AsSpan(0, (int)Math.Min(BlockWords, pages - p));
                r.ReadWords(sums, $"region {g} checksums");
                for (int k = 0; k < sums.Length; k++)
                {
                    long page = p + k;
                    if (sums[k] != 0 && (bitmap[page >> 6] & (1UL << (int)(page & 63))) == 0)
                        throw new SnapshotFormatException($"{ctx} is corrupt: region {g} page {page} is absent but has a checksum");
                }
                visitor.Checksums(g, p, sums);
            }
        }
        ulong computed = r.StopHash();
        ulong stored = r.U64("trailer checksum");
        if (computed != stored) throw new SnapshotFormatException($"{ctx} is corrupt (trailer checksum mismatch)");
        trailerChecksum = stored;
        // Compared once the trailer is known intact: a different id is then a splice, not damage.
        if (id != snapshotId)
            throw new SnapshotFormatException(
                $"{ctx} belongs to snapshot {id}, the header to {snapshotId}: the header was joined to another snapshot's body");
        return stateHash;
    }
}
