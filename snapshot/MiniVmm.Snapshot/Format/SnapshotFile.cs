using System.Buffers.Binary;
using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// Reader for the file form. <see cref="Open"/> validates everything but the page contents (header, version, layout,
/// completion marker, file length, trailer and state checksums); <see cref="ReadPage"/> checks a page's checksum when it
/// is read and <see cref="Verify"/> checks every page. Reads are thread-safe (pread).
/// </summary>
public sealed partial class SnapshotFile : ISnapshotPages, IDisposable
{
    private readonly ISnapshotBytes _handle;
    private readonly SnapshotHeader _header;
    private readonly ulong[][] _bitmaps;
    private readonly ulong[][] _checksums;
    private readonly long[] _present;
    private readonly (long Offset, long Length, string What)[] _padding;
    private readonly string _what;

    private SnapshotFile(string path, ISnapshotBytes handle, SnapshotHeader header, ulong[][] bitmaps, ulong[][] checksums,
        long[] present, IReadOnlyList<StateSection> sections, (long, long, string)[] padding, ulong trailerChecksum)
    {
        TrailerChecksum = trailerChecksum;
        Path = path;
        _what = $"snapshot '{path}'";
        _handle = handle;
        _header = header;
        _bitmaps = bitmaps;
        _checksums = checksums;
        _present = present;
        Sections = sections;
        _padding = padding;
    }

    public string Path { get; }
    public SnapshotHeaderInfo Info => _header.Info;
    internal SnapshotHeader Header => _header;

    /// <summary>Reads file bytes as they are (no checksum; the caller copies a validated file).</summary>
    internal void ReadRaw(Span<byte> destination, long offset) => ReadExactly(_handle, destination, offset, _what, "data");
    public IReadOnlyList<SnapshotRegion> Regions => _header.Info.Regions;
    public IReadOnlyList<StateSection> Sections { get; }
    public string FormatVersion => _header.Version;

    /// <summary>The random id the writer gave this snapshot; header, state and trailer all carry it (checked by Open).</summary>
    public Guid SnapshotId => _header.SnapshotId;
    public DateTimeOffset CreatedAt => DateTimeOffset.FromUnixTimeMilliseconds(
        Math.Clamp(_header.CreatedUnixMs, DateTimeOffset.MinValue.ToUnixTimeMilliseconds(), DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()));
    public long FileLength => _header.FileLength;

    /// <summary>The checksum the trailer ends with (it covers every page checksum and the state checksum).</summary>
    public ulong TrailerChecksum { get; }

    /// <summary>How an incremental child names this snapshot: id plus trailer checksum.</summary>
    public SnapshotParent Identity => new(SnapshotId, TrailerChecksum);

    /// <summary>The snapshot this one is an incremental link of; null for a full snapshot.</summary>
    public SnapshotParent? Parent => _header.Info.Parent;

    public bool IsIncremental => Parent is not null;
    public long StateLength => _header.StateLength;
    public long TrailerLength => _header.TrailerLength;

    /// <summary>Opens and validates a snapshot file. Any problem with its content is a <see cref="SnapshotFormatException"/>; I/O errors (missing file, permissions) are not.</summary>
    public static SnapshotFile Open(string path) => Open(path, allowPartialName: false);

    /// <summary><see cref="Open(string)"/>; <paramref name="allowPartialName"/> lets a writer check its own PATH.partial before renaming it.</summary>
    internal static SnapshotFile Open(string path, bool allowPartialName)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        RequireRegularSnapshot(path, "snapshot");
        if (!allowPartialName && path.EndsWith(SnapshotFormat.PartialSuffix, StringComparison.Ordinal))
            throw new SnapshotFormatException($"snapshot '{path}' is an unfinished snapshot: a save writes " +
                $"there and renames the file once it is complete; rename it first if you know it is complete");
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            return Load(path, new FileSnapshotBytes(handle));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens and validates a snapshot read through <paramref name="source"/> (an object store's ranged reads), named
    /// <paramref name="name"/> in messages; the snapshot owns the source (disposed with it, or at once on failure).
    /// </summary>
    public static SnapshotFile Open(ISnapshotBytes source, string name)
    {
        try
        {
            return Load(name, source);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The snapshot id in the header of <paramref name="path"/>, or null when it is not a regular file that starts
    /// with a valid MiniVmm snapshot header (the chain's parent search skips such files). Reads only the header.
    /// </summary>
    internal static Guid? TryReadId(string path)
    {
        if (KvmSharp.FileKinds.Refusal(path, "snapshot", "a regular file", KvmSharp.FileKind.Regular) is not null) return null;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            return ReadHeader(new FileSnapshotBytes(handle), RandomAccess.GetLength(handle), path, out _, out _).SnapshotId;
        }
        catch (Exception e) when (e is SnapshotFormatException or IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// The snapshot id in a header read from elsewhere (the first <see cref="SnapshotFormat.HeaderAreaSize"/> bytes of an
    /// object of <paramref name="length"/> bytes, or all of a shorter one), or null when they are not a valid header.
    /// </summary>
    internal static Guid? TryReadId(ReadOnlyMemory<byte> head, long length, string name)
    {
        try { return ReadHeader(new MemorySnapshotBytes(head), length, name, out _, out _).SnapshotId; }
        catch (SnapshotFormatException) { return null; }
    }

    /// <summary>Bytes already in memory (a header fetched from a store), read as a snapshot's start.</summary>
    private sealed class MemorySnapshotBytes(ReadOnlyMemory<byte> data) : ISnapshotBytes
    {
        public long Length => data.Length;

        public int Read(Span<byte> destination, long offset)
        {
            if (offset >= data.Length) return 0;
            int n = (int)Math.Min(destination.Length, data.Length - offset);
            data.Span.Slice((int)offset, n).CopyTo(destination);
            return n;
        }

        public void Dispose() { }
    }

    /// <summary>
    /// Refuses FIFOs, devices, sockets and directories before they are opened: a FIFO would block the open (or the
    /// reads) for ever and a device has no length. A missing file is left to the open, which names the error.
    /// </summary>
    internal static void RequireRegularSnapshot(string path, string what)
    {
        if (KvmSharp.FileKinds.Refusal(path, what, "a regular file", KvmSharp.FileKind.Regular) is { } why)
            throw new SnapshotFormatException(why);
    }

    /// <summary>Reads and decodes the header at the start of the file (the area after it is returned for checks).</summary>
    private static SnapshotHeader ReadHeader(ISnapshotBytes handle, long length, string what, out byte[] head, out int headerLength)
    {
        head = new byte[(int)Math.Min(length, SnapshotFormat.HeaderAreaSize)];
        ReadExactly(handle, head, 0, what, "header");
        headerLength = SnapshotHeader.ReadPrefix(head, expectStream: false, what);
        if (headerLength > head.Length)
            throw new SnapshotFormatException(
                $"{what} is truncated: its header needs {headerLength} bytes but the file has only {length}");
        return SnapshotHeader.Decode(head.AsSpan(0, headerLength), expectStream: false, what);
    }

    private static SnapshotFile Load(string path, ISnapshotBytes handle)
    {
        string what = $"snapshot '{path}'";
        long length = handle.Length;
        var header = ReadHeader(handle, length, what, out var head, out int headerLength);
        if (!header.IsComplete)
            throw new SnapshotFormatException($"{what} is incomplete: the save that wrote it did not finish");
        if (length < header.FileLength)
            throw new SnapshotFormatException($"{what} is truncated: the file has {length} bytes but its header says {header.FileLength}");
        if (length > header.FileLength)
            throw new SnapshotFormatException(
                $"{what} is corrupt: {length - header.FileLength} unexpected bytes after the end of the snapshot");
        var padding = ValidateLayout(header, headerLength, what);

        Span<byte> marker = stackalloc byte[SnapshotFormat.EndMarkerSize];
        ReadExactly(handle, marker, header.FileLength - SnapshotFormat.EndMarkerSize, what, "completion marker");
        if (!marker[..8].SequenceEqual(SnapshotFormat.EndMagic)
            || BinaryPrimitives.ReadInt64LittleEndian(marker[8..]) != header.FileLength)
            throw new SnapshotFormatException($"{what} is corrupt or incomplete: the completion marker at its end is missing");

        var regions = header.Info.Regions;
        var keeper = new TrailerKeeper(regions.Count);
        var trailerReader = SequentialReader.ForRange(handle, header.TrailerOffset, header.TrailerLength, what);
        bool sparse = header.Info.Parent is not null;
        ulong stateHash = TrailerCodec.Read(trailerReader, regions, header.SnapshotId, keeper, what, out ulong trailerChecksum, sparse);
        if (sparse && header.TrailerLength != SnapshotLayout.SparseTrailerLength(regions, keeper.Present))
            throw new SnapshotFormatException($"{what} is corrupt: trailer length {header.TrailerLength} does not match its present pages " +
                $"({SnapshotLayout.SparseTrailerLength(regions, keeper.Present)} expected)");

        var state = new byte[header.StateLength];
        ReadExactly(handle, state, header.StateOffset, what, "state section");
        if (XxHash3.HashToUInt64(state) != stateHash)
            throw new SnapshotFormatException($"{what} is corrupt: the state section does not match its checksum");
        var sections = StateCodec.Decode(state, header.SnapshotId, what);

        // Small padding is checked now; the large gaps between regions are left to Verify.
        if (head.AsSpan(headerLength).IndexOfAnyExcept((byte)0) is var nz and >= 0)
            throw new SnapshotFormatException($"{what} is corrupt: non-zero byte at offset {headerLength + nz} after the header");
        long stateEnd = header.StateOffset + header.StateLength;
        if (header.TrailerOffset - stateEnd is > 0 and < SnapshotFormat.HeaderAreaSize)
        {
            var gap = new byte[header.TrailerOffset - stateEnd];
            ReadExactly(handle, gap, stateEnd, what, "padding");
            if (gap.AsSpan().IndexOfAnyExcept((byte)0) is var g and >= 0)
                throw new SnapshotFormatException($"{what} is corrupt: non-zero byte at offset {stateEnd + g} after the state section");
        }
        return new SnapshotFile(path, handle, header, keeper.Bitmaps, keeper.Sums, keeper.Present, sections, padding, trailerChecksum);
    }

    /// <summary>Checks that regions, state and trailer lie in order inside the file without overlapping; returns the gaps.</summary>
    private static (long, long, string)[] ValidateLayout(SnapshotHeader h, int headerLength, string what)
    {
        var padding = new List<(long, long, string)>();
        long fileLength = h.FileLength;
        long cursor = SnapshotFormat.HeaderAreaSize;
        long paddingStart = headerLength;
        string after = "the header";
        var regions = h.Info.Regions;
        for (int i = 0; i < regions.Count; i++)
        {
            long offset = h.RegionOffsets[i], size = (long)regions[i].Size;
            if (offset % SnapshotFormat.PageSize != 0 || offset < cursor || offset > fileLength || size > fileLength - offset)
                throw new SnapshotFormatException(
                    $"{what} is corrupt: region {i}'s page area (offset {offset}, {size} bytes) is misplaced or outside the file");
            padding.Add((paddingStart, offset - paddingStart, $"padding after {after}"));
            cursor = paddingStart = offset + size;
            after = $"region {i}";
        }
        if (h.StateOffset < cursor || h.StateOffset > fileLength || h.StateLength > fileLength - h.StateOffset)
            throw new SnapshotFormatException($"{what} is corrupt: the state section (offset {h.StateOffset}) is misplaced or outside the file");
        if (h.StateLength < StateCodec.PrefixSize || h.StateLength > SnapshotFormat.MaxStateBytes)
            throw new SnapshotFormatException($"{what} is corrupt: state section length {h.StateLength} is out of range");
        padding.Add((paddingStart, h.StateOffset - paddingStart, $"padding after {after}"));
        long stateEnd = h.StateOffset + h.StateLength;
        long expectedTrailer = SnapshotLayout.TrailerLength(regions);
        if (h.Info.Parent is not null)
        {
            // An incremental link lists present pages' checksums only: exact once the bitmaps are read (Load checks it).
            long min = SnapshotLayout.MinSparseTrailerLength(regions);
            if (h.TrailerLength < min || h.TrailerLength > expectedTrailer)
                throw new SnapshotFormatException(
                    $"{what} is corrupt: trailer length {h.TrailerLength} is outside {min}..{expectedTrailer} for its regions");
        }
        else if (h.TrailerLength != expectedTrailer)
            throw new SnapshotFormatException(
                $"{what} is corrupt: trailer length {h.TrailerLength} does not match its regions ({expectedTrailer} expected)");
        if (h.TrailerOffset < stateEnd || h.TrailerOffset > fileLength || h.TrailerLength > fileLength - h.TrailerOffset
            || h.TrailerOffset + h.TrailerLength + SnapshotFormat.EndMarkerSize != fileLength)
            throw new SnapshotFormatException($"{what} is corrupt: the trailer (offset {h.TrailerOffset}) is misplaced");
        padding.Add((stateEnd, h.TrailerOffset - stateEnd, "padding after the state section"));
        return padding.Where(p => p.Item2 > 0).ToArray();
    }

    private static void ReadExactly(ISnapshotBytes handle, Span<byte> buffer, long offset, string what, string part)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = handle.Read(buffer[total..], offset + total);
            if (n <= 0)
                throw new SnapshotFormatException(
                    $"{what} is truncated: {part} at offset {offset} needs {buffer.Length} bytes but only {total} could be read");
            total += n;
        }
    }

    private sealed class TrailerKeeper(int regions) : ITrailerVisitor
    {
        public readonly ulong[][] Bitmaps = new ulong[regions][];
        public readonly ulong[][] Sums = new ulong[regions][];
        public readonly long[] Present = new long[regions];

        // The page count was checked against the trailer length, and the trailer length against the file's length.
        public void Region(int region, long pageCount, ulong[] bitmap, long presentCount)
        {
            Bitmaps[region] = bitmap;
            Present[region] = presentCount;
            Sums[region] = new ulong[pageCount];
        }

        public void Checksums(int region, long firstPage, ReadOnlySpan<ulong> checksums) =>
            checksums.CopyTo(Sums[region].AsSpan((int)firstPage));
    }
}
