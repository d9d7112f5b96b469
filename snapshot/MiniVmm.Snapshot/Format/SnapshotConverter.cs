using System.IO.Hashing;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// Turns the stream form into the file form (<c>minivmm snapshot convert</c>). The stream is replayed through the file
/// writer, so the result is byte-for-byte the file a direct save would have written; the stream's trailer is then
/// checked against what was replayed (present pages and every page's checksum). Truncated or corrupt streams are
/// rejected with a <see cref="SnapshotFormatException"/> and leave no output file.
/// </summary>
public static class SnapshotConverter
{
    public static void Convert(string streamPath, string filePath, bool fsync = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamPath);
        // A pipe or FIFO could keep convert waiting for ever; `exec:cat > FILE` saves the stream to a file first.
        SnapshotFile.RequireRegularSnapshot(streamPath, "snapshot stream");
        using var stream = new FileStream(streamPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        Convert(stream, filePath, fsync, $"snapshot stream '{streamPath}'");
    }

    /// <summary>Reads <paramref name="stream"/> to its end (it is not disposed).</summary>
    public static void Convert(Stream stream, string filePath, bool fsync = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Convert(stream, filePath, fsync, "snapshot stream");
    }

    private static void Convert(Stream stream, string filePath, bool fsync, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        var r = SequentialReader.ForStream(stream, what);
        var prefix = new byte[SnapshotHeader.PrefixSize];
        int got = r.ReadUpTo(prefix);
        int headerLength = SnapshotHeader.ReadPrefix(prefix.AsSpan(0, got), expectStream: true, what);
        var headerBytes = new byte[headerLength];
        prefix.CopyTo(headerBytes, 0);
        r.ReadExactly(headerBytes.AsSpan(SnapshotHeader.PrefixSize), "stream header");
        var header = SnapshotHeader.Decode(headerBytes, expectStream: true, what);

        using var writer = SnapshotFileWriter.Create(filePath, header.Info, fsync, header.CreatedUnixMs, header.SnapshotId);
        try
        {
            var sections = Replay(r, writer, header.SnapshotId, what);
            writer.Complete(sections);
        }
        catch
        {
            writer.Abort();
            throw;
        }
    }

    private static IReadOnlyList<StateSection> Replay(SequentialReader r, SnapshotFileWriter writer, Guid snapshotId, string what)
    {
        var regions = writer.Regions;
        var recordBytes = new byte[StreamRecord.Size];
        byte[] data = [];
        byte[]? state = null;
        ulong stateHash = 0;
        bool trailerSeen = false;
        while (true)
        {
            long at = r.Position;
            int n = r.ReadUpTo(recordBytes);
            if (n == 0)
                throw new SnapshotFormatException(
                    $"{what} is truncated: it ends at offset {at} without an end record (the save did not finish)");
            if (n < StreamRecord.Size)
                throw new SnapshotFormatException($"{what} is truncated: it ends inside a record header at offset {at}");
            var record = StreamRecord.Decode(recordBytes, at, what);
            switch (record.Type)
            {
                case StreamRecordType.Pages:
                case StreamRecordType.ZeroPages:
                {
                    if (state is not null)
                        throw new SnapshotFormatException($"{what} is corrupt: page record after the state section at offset {at}");
                    if (record.A >= regions.Count || record.C is 0 or > StreamRecord.MaxPages
                        || record.B > (ulong)regions[(int)record.A].PageCount
                        || record.C > (ulong)regions[(int)record.A].PageCount - record.B)
                        throw new SnapshotFormatException(
                            $"{what} is corrupt: page record at offset {at} (region {record.A}, pages {record.B}+{record.C}) is out of range");
                    int region = (int)record.A;
                    long first = (long)record.B;
                    if (record.Type == StreamRecordType.Pages)
                    {
                        int length = (int)record.C * SnapshotFormat.PageSize;
                        if (data.Length < length) data = new byte[length];
                        r.ReadExactly(data.AsSpan(0, length), $"page record data (region {region}, page {first})");
                        writer.WritePrivatePages(region, first, data.AsSpan(0, length));
                    }
                    else
                    {
                        for (long p = first; p < first + record.C; p++) writer.WritePages(region, p, PageBatch.ZeroPage);
                    }
                    break;
                }
                case StreamRecordType.State:
                    if (state is not null || trailerSeen)
                        throw new SnapshotFormatException($"{what} is corrupt: unexpected state record at offset {at}");
                    if (record.A != 0 || record.C != 0 || record.B < StateCodec.PrefixSize || record.B > SnapshotFormat.MaxStateBytes)
                        throw new SnapshotFormatException($"{what} is corrupt: state record at offset {at} has length {record.B}");
                    state = new byte[record.B];
                    r.ReadExactly(state, "state section");
                    break;
                case StreamRecordType.Trailer:
                {
                    long expected = SnapshotLayout.TrailerLength(regions);
                    if (state is null || trailerSeen)
                        throw new SnapshotFormatException($"{what} is corrupt: unexpected trailer record at offset {at}");
                    if (record.A != 0 || record.C != 0 || record.B != (ulong)expected)
                        throw new SnapshotFormatException(
                            $"{what} is corrupt: trailer record at offset {at} has length {record.B}, {expected} expected");
                    var checker = new TrailerChecker(writer, what);
                    stateHash = TrailerCodec.Read(r, regions, snapshotId, checker, what, out _);
                    if (checker.FirstMismatch is { } mismatch) throw new SnapshotFormatException(mismatch);
                    trailerSeen = true;
                    break;
                }
                case StreamRecordType.End:
                    if (!trailerSeen)
                        throw new SnapshotFormatException($"{what} is corrupt: end record before the trailer at offset {at}");
                    if (record.A != 0 || record.C != 0 || record.B != (ulong)at)
                        throw new SnapshotFormatException($"{what} is corrupt: the end record at offset {at} says {record.B}");
                    if (r.ReadUpTo(new byte[1]) != 0)
                        throw new SnapshotFormatException($"{what} is corrupt: unexpected data after the end record");
                    if (XxHash3.HashToUInt64(state) != stateHash)
                        throw new SnapshotFormatException($"{what} is corrupt: the state section does not match its checksum");
                    return StateCodec.Decode(state!, snapshotId, what);
            }
        }
    }

    /// <summary>Compares the stream's trailer with what the replay produced; keeps the first difference.</summary>
    private sealed class TrailerChecker(SnapshotFileWriter writer, string what) : ITrailerVisitor
    {
        public string? FirstMismatch { get; private set; }

        public void Region(int region, long pageCount, ulong[] bitmap, long presentCount)
        {
            var words = new ulong[bitmap.Length];
            writer.Tables[region].CopyWords(0, words);
            for (int w = 0; w < words.Length && FirstMismatch is null; w++)
            {
                ulong diff = words[w] ^ bitmap[w];
                if (diff == 0) continue;
                long page = w * 64L + System.Numerics.BitOperations.TrailingZeroCount(diff);
                bool inTrailer = (bitmap[w] & (diff & (~diff + 1))) != 0;
                FirstMismatch = $"{what} is corrupt: page {page} of region {region} is {(inTrailer ? "present" : "absent")} "
                                + $"in the trailer but the page records say otherwise";
            }
        }

        public void Checksums(int region, long firstPage, ReadOnlySpan<ulong> checksums)
        {
            var table = writer.Tables[region];
            for (int i = 0; i < checksums.Length && FirstMismatch is null; i++)
            {
                long page = firstPage + i;
                if (table.Checksum(page) == checksums[i]) continue;
                ulong gpa = writer.Regions[region].GuestAddress + (ulong)page * SnapshotFormat.PageSize;
                FirstMismatch = $"{what} is corrupt: page {page} of region {region} (guest address 0x{gpa:x}) does not match its checksum in the trailer";
            }
        }
    }
}
