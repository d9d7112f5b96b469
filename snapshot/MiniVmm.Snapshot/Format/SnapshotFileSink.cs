using KvmSharp;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Snapshot.Format;

/// <summary>Creates the file form of a snapshot (seekable; pages written with pwrite in any order).</summary>
public static class SnapshotFileSink
{
    /// <summary>
    /// Starts writing <paramref name="path"/>: the data goes to <c>PATH.partial</c> (replaced if it exists), which
    /// <see cref="ISnapshotSink.Complete"/> renames to <paramref name="path"/> (replacing an older snapshot atomically).
    /// <paramref name="createdAt"/> (default: now) is recorded in the header and <paramref name="snapshotId"/> (default: a
    /// new random UUID) in header, state and trailer; fixing both makes the output reproducible.
    /// </summary>
    public static ISnapshotSink Create(string path, SnapshotHeaderInfo info, bool fsync = true, DateTimeOffset? createdAt = null,
        Guid? snapshotId = null) =>
        SnapshotFileWriter.Create(path, info, fsync, (createdAt ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds(),
            SnapshotFormat.IdForNewSnapshot(snapshotId));
}

/// <summary>
/// Writes the file form. The file is sized to the end of the memory area up front, so pages never written are holes.
/// The header at offset 0 first says "incomplete"; <see cref="Complete"/> writes state, trailer, the final header and
/// the completion marker (last), fsyncs, and renames PATH.partial to PATH.
/// </summary>
internal sealed class SnapshotFileWriter : ISnapshotSink
{
    private const int StateOpen = 0, StateCompleted = 1, StateAborted = 2;

    private readonly string _path;
    private readonly string _partialPath;
    private readonly SnapshotHeaderInfo _info;
    private readonly long[] _offsets;
    private readonly long _memoryEnd;
    private readonly long _createdUnixMs;
    private readonly Guid _snapshotId;
    private readonly bool _fsync;
    private readonly bool _incremental;
    private readonly SafeFileHandle _handle;
    private readonly object _gate = new();
    private volatile int _state;
    private long _pagesWritten, _zeroPages, _bytesWritten;

    private SnapshotFileWriter(string path, SnapshotHeaderInfo info, long[] offsets, long memoryEnd, long createdUnixMs,
        Guid snapshotId, bool fsync, SafeFileHandle handle)
    {
        _snapshotId = snapshotId;
        _path = path;
        _partialPath = path + SnapshotFormat.PartialSuffix;
        _info = info;
        _offsets = offsets;
        _memoryEnd = memoryEnd;
        _createdUnixMs = createdUnixMs;
        _fsync = fsync;
        _incremental = info.Parent is not null;
        _handle = handle;
        Tables = info.Regions.Select(r => new PageTable(r.PageCount)).ToArray();
    }

    internal PageTable[] Tables { get; }
    internal IReadOnlyList<SnapshotRegion> Regions => _info.Regions;

    public static SnapshotFileWriter Create(string path, SnapshotHeaderInfo info, bool fsync, long createdUnixMs, Guid snapshotId)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SnapshotHeader.ValidateInfo(info);
        info = info with { Regions = info.Regions.ToArray() };
        var offsets = SnapshotLayout.RegionOffsets(info.Regions, out long memoryEnd);
        var header = Header(info, offsets, createdUnixMs, snapshotId, 0, 0, 0, 0, 0, memoryEnd).Encode();
        string partial = path + SnapshotFormat.PartialSuffix;
        var handle = File.OpenHandle(partial, FileMode.Create, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            RandomAccess.SetLength(handle, memoryEnd);
            RandomAccess.Write(handle, header, 0);
        }
        catch
        {
            handle.Dispose();
            TryDelete(partial);
            throw;
        }
        var writer = new SnapshotFileWriter(path, info, offsets, memoryEnd, createdUnixMs, snapshotId, fsync, handle);
        writer._bytesWritten = header.Length;
        return writer;
    }

    private static SnapshotHeader Header(SnapshotHeaderInfo info, long[] offsets, long created, Guid id, uint flags, long stateOffset,
        long stateLength, long trailerOffset, long trailerLength, long fileLength) =>
        new(false, SnapshotFormat.MajorVersion, SnapshotFormat.MinorVersion, flags, created, id, info, offsets,
            stateOffset, stateLength, trailerOffset, trailerLength, fileLength);

    public bool IsSeekable => true;
    public long PagesWritten => Interlocked.Read(ref _pagesWritten);
    public long ZeroPages => Interlocked.Read(ref _zeroPages);
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);
    public TimeSpan FsyncTime { get; private set; }
    public Guid SnapshotId => _snapshotId;
    public ulong TrailerChecksum { get; private set; }

    public long WritePages(int region, long firstPage, ReadOnlySpan<byte> pages) => Store(region, firstPage, pages, inPlace: false);

    public long WritePrivatePages(int region, long firstPage, ReadOnlySpan<byte> pages) => Store(region, firstPage, pages, inPlace: true);

    private long Store(int region, long firstPage, ReadOnlySpan<byte> pages, bool inPlace)
    {
        ThrowIfNotOpen();
        long written = 0;
        long count = PageBatch.CheckArguments(_info.Regions, region, firstPage, pages.Length);
        var table = Tables[region];
        long areaOffset = _offsets[region];
        var batch = PageBatch.ForCurrentThread();
        try
        {
            for (long done = 0; done < count;)
            {
                int n = (int)Math.Min(PageBatch.MaxPages, count - done);
                var data = batch.Load(firstPage + done, pages.Slice((int)done * SnapshotFormat.PageSize, n * SnapshotFormat.PageSize), inPlace);
                for (int i = 0; i < n;)
                {
                    int end = batch.RunEnd(i);
                    long page = batch.FirstPage + i;
                    if (!batch.IsZero(i))
                    {
                        RandomAccess.Write(_handle, PageBatch.Pages(data, i, end - i), areaOffset + page * SnapshotFormat.PageSize);
                        for (int k = i; k < end; k++) table.MarkPresent(batch.FirstPage + k, batch.Checksum(k));
                        Interlocked.Add(ref _pagesWritten, end - i);
                        Interlocked.Add(ref _bytesWritten, (long)(end - i) * SnapshotFormat.PageSize);
                        written += (long)(end - i) * SnapshotFormat.PageSize;
                    }
                    else
                        written += StoreZeroRun(table, areaOffset, page, end - i);
                    i = end;
                }
                done += n;
            }
        }
        catch (ObjectDisposedException) when (_state == StateAborted)
        {
            throw new OperationCanceledException("the snapshot was aborted");
        }
        return written;
    }

    public long WriteZeroPages(int region, long firstPage, long count)
    {
        ThrowIfNotOpen();
        PageBatch.CheckRange(_info.Regions, region, firstPage, count);
        try
        {
            return StoreZeroRun(Tables[region], _offsets[region], firstPage, count);
        }
        catch (ObjectDisposedException) when (_state == StateAborted)
        {
            throw new OperationCanceledException("the snapshot was aborted");
        }
    }

    /// <summary>
    /// Pages [first, first+count) are zero: nothing to write for a page the file holds no data for (the area is a hole
    /// until written). Returns the bytes written for the exceptions.
    /// </summary>
    private long StoreZeroRun(PageTable table, long areaOffset, long first, long count)
    {
        long written = 0;
        for (long p = first; p < first + count; p++)
        {
            if (_incremental)
            {
                // A changed page that is zero now must still override the parent's: present, as a hole.
                if (table.IsPresent(p) && table.Checksum(p) != PageBatch.ZeroPageChecksum)
                {
                    RandomAccess.Write(_handle, PageBatch.ZeroPage, areaOffset + p * SnapshotFormat.PageSize);
                    written += SnapshotFormat.PageSize;
                }
                table.MarkPresent(p, PageBatch.ZeroPageChecksum);
            }
            else if (table.IsPresent(p))
            {
                // Stored earlier, zero now: the last write wins, so clear it.
                RandomAccess.Write(_handle, PageBatch.ZeroPage, areaOffset + p * SnapshotFormat.PageSize);
                table.MarkAbsent(p);
                written += SnapshotFormat.PageSize;
            }
        }
        Interlocked.Add(ref _bytesWritten, written);
        Interlocked.Add(ref _zeroPages, count);
        return written;
    }

    public void Complete(IReadOnlyList<StateSection> sections)
    {
        lock (_gate)
        {
            ThrowIfNotOpen();
            try
            {
                var state = StateCodec.Encode(sections, _snapshotId);
                ulong stateHash = XxHash3.HashToUInt64(state);
                long stateOffset = _memoryEnd;
                Write(state, stateOffset);
                long trailerOffset = SnapshotFormat.AlignUp(stateOffset + state.Length, SnapshotFormat.PageSize);
                long position = trailerOffset;
                ulong trailerChecksum = TrailerCodec.Write(_info.Regions, Tables, stateHash, _snapshotId, chunk =>
                {
                    Write(chunk, position);
                    position += chunk.Length;
                }, sparse: _incremental);
                long trailerLength = position - trailerOffset;
                Debug.Assert(trailerLength == (_incremental
                    ? SnapshotLayout.SparseTrailerLength(_info.Regions, Tables.Select(t => t.PresentCount).ToArray())
                    : SnapshotLayout.TrailerLength(_info.Regions)));
                long fileLength = position + SnapshotFormat.EndMarkerSize;
                Write(Header(_info, _offsets, _createdUnixMs, _snapshotId, SnapshotHeader.FlagComplete, stateOffset, state.Length,
                    trailerOffset, trailerLength, fileLength).Encode(), 0);
                Span<byte> marker = stackalloc byte[SnapshotFormat.EndMarkerSize];
                SnapshotFormat.EndMagic.CopyTo(marker);
                BinaryPrimitives.WriteInt64LittleEndian(marker[8..], fileLength);
                Write(marker, position); // the completion marker goes last

                var fsyncClock = Stopwatch.StartNew();
                if (_fsync) RandomAccess.FlushToDisk(_handle);
                var fileFsync = fsyncClock.Elapsed;
                _handle.Dispose();
                File.Move(_partialPath, _path, overwrite: true);
                if (_fsync)
                {
                    fsyncClock.Restart();
                    HostIo.TryFlushDirectory(Path.GetDirectoryName(Path.GetFullPath(_path)) ?? "/");
                    FsyncTime = fileFsync + fsyncClock.Elapsed;
                }
                TrailerChecksum = trailerChecksum;
                _state = StateCompleted;
            }
            catch
            {
                AbortCore();
                throw;
            }
        }
    }

    private void Write(ReadOnlySpan<byte> data, long offset)
    {
        RandomAccess.Write(_handle, data, offset);
        Interlocked.Add(ref _bytesWritten, data.Length);
    }

    public void Abort()
    {
        lock (_gate)
        {
            if (_state == StateOpen) AbortCore();
        }
    }

    private void AbortCore()
    {
        _state = StateAborted;
        _handle.Dispose();
        TryDelete(_partialPath);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private void ThrowIfNotOpen()
    {
        int s = _state;
        if (s == StateAborted) throw new OperationCanceledException("the snapshot was aborted");
        if (s == StateCompleted) throw new InvalidOperationException("the snapshot is already complete");
    }

    public void Dispose()
    {
        if (_state == StateOpen) Abort();
    }
}
