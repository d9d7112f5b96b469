using System.IO.Hashing;

namespace MiniVmm.Snapshot.Format;

/// <summary>Creates the stream form of a snapshot, for destinations that cannot seek (a pipe to <c>exec:CMD</c>).</summary>
public static class SnapshotStreamSink
{
    /// <summary>
    /// Writes the stream header at once. The sink disposes <paramref name="destination"/> when it completes or aborts,
    /// unless <paramref name="leaveOpen"/>. <paramref name="createdAt"/> defaults to now, <paramref name="snapshotId"/> to
    /// a new random UUID (the converted file keeps it).
    /// </summary>
    public static ISnapshotSink Create(Stream destination, SnapshotHeaderInfo info, bool leaveOpen = false, DateTimeOffset? createdAt = null,
        Guid? snapshotId = null) =>
        new SnapshotStreamWriter(destination, info, leaveOpen, (createdAt ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds(),
            SnapshotFormat.IdForNewSnapshot(snapshotId));
}

/// <summary>
/// Writes records in save order: stream header, page records (a later record for a page supersedes earlier ones),
/// the state, the trailer (bitmap and checksums as finally written), an end record. Writers copy and hash their pages
/// outside the lock; only the ordered appends to the destination are serialized.
/// </summary>
internal sealed class SnapshotStreamWriter : ISnapshotSink
{
    private const int StateOpen = 0, StateCompleted = 1, StateAborted = 2;

    private readonly Stream _destination;
    private readonly BufferedStream _out;
    private readonly bool _leaveOpen;
    private readonly SnapshotHeaderInfo _info;
    private readonly PageTable[] _tables;
    private readonly object _gate = new();
    private readonly byte[] _record = new byte[StreamRecord.Size];
    private readonly Guid _snapshotId;
    private volatile int _state;
    private Exception? _failure; // why the stream was given up, when a write failed
    private long _pagesWritten, _zeroPages, _bytesWritten;

    public SnapshotStreamWriter(Stream destination, SnapshotHeaderInfo info, bool leaveOpen, long createdUnixMs, Guid snapshotId)
    {
        _snapshotId = snapshotId;
        ArgumentNullException.ThrowIfNull(destination);
        if (!destination.CanWrite) throw new ArgumentException("the destination stream is not writable", nameof(destination));
        SnapshotHeader.ValidateInfo(info);
        if (info.Parent is not null)
            throw new NotSupportedException("an incremental snapshot needs a file destination: the stream form has no incremental links");
        _info = info with { Regions = info.Regions.ToArray() };
        _tables = _info.Regions.Select(r => new PageTable(r.PageCount)).ToArray();
        _destination = destination;
        _leaveOpen = leaveOpen;
        _out = new BufferedStream(destination, 256 * 1024);
        var header = new SnapshotHeader(true, SnapshotFormat.MajorVersion, SnapshotFormat.MinorVersion, 0, createdUnixMs, snapshotId, _info,
            new long[_info.Regions.Count], 0, 0, 0, 0, 0).Encode();
        Append(header);
    }

    public bool IsSeekable => false;
    public long PagesWritten => Interlocked.Read(ref _pagesWritten);
    public long ZeroPages => Interlocked.Read(ref _zeroPages);
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);
    public TimeSpan FsyncTime => TimeSpan.Zero;
    public Guid SnapshotId => _snapshotId;
    public ulong TrailerChecksum { get; private set; }

    public long WritePages(int region, long firstPage, ReadOnlySpan<byte> pages) => Store(region, firstPage, pages, inPlace: false);

    public long WritePrivatePages(int region, long firstPage, ReadOnlySpan<byte> pages) => Store(region, firstPage, pages, inPlace: true);

    private long Store(int region, long firstPage, ReadOnlySpan<byte> pages, bool inPlace)
    {
        ThrowIfNotOpen();
        long written = 0;
        long count = PageBatch.CheckArguments(_info.Regions, region, firstPage, pages.Length);
        var table = _tables[region];
        var batch = PageBatch.ForCurrentThread();
        for (long done = 0; done < count;)
        {
            int n = (int)Math.Min(PageBatch.MaxPages, count - done);
            var data = batch.Load(firstPage + done, pages.Slice((int)done * SnapshotFormat.PageSize, n * SnapshotFormat.PageSize), inPlace);
            lock (_gate)
            {
                ThrowIfNotOpen();
                try
                {
                    long before = _bytesWritten; // every append happens under _gate
                    AppendBatch(region, batch, data, table);
                    written += _bytesWritten - before;
                }
                catch (Exception e)
                {
                    FailAppend(e);
                    throw;
                }
            }
            done += n;
        }
        return written;
    }

    public long WriteZeroPages(int region, long firstPage, long count)
    {
        ThrowIfNotOpen();
        PageBatch.CheckRange(_info.Regions, region, firstPage, count);
        lock (_gate)
        {
            ThrowIfNotOpen();
            try
            {
                long before = _bytesWritten;
                AppendZeroRun(region, _tables[region], firstPage, count);
                return _bytesWritten - before;
            }
            catch (Exception e)
            {
                FailAppend(e);
                throw;
            }
        }
    }

    /// <summary>A half-written record can't be taken back: the stream is unusable from here on. Caller holds the gate.</summary>
    private void FailAppend(Exception e)
    {
        if (e is not OperationCanceledException) _failure ??= e;
        AbortCore();
    }

    private void AppendBatch(int region, PageBatch batch, ReadOnlySpan<byte> data, PageTable table)
    {
        int n = batch.Count;
        for (int i = 0; i < n;)
        {
            int end = batch.RunEnd(i);
            if (!batch.IsZero(i))
            {
                AppendRecord(new StreamRecord(StreamRecordType.Pages, (uint)region, (ulong)(batch.FirstPage + i), (uint)(end - i)));
                Append(PageBatch.Pages(data, i, end - i));
                for (int k = i; k < end; k++) table.MarkPresent(batch.FirstPage + k, batch.Checksum(k));
                Interlocked.Add(ref _pagesWritten, end - i);
            }
            else
                AppendZeroRun(region, table, batch.FirstPage + i, end - i);
            i = end;
        }
    }

    /// <summary>
    /// Pages [first, first+count) are zero: a page never stored needs no record (a reader starts from zeros); one stored
    /// earlier gets a zero record, since the last write wins. Caller holds the gate.
    /// </summary>
    private void AppendZeroRun(int region, PageTable table, long first, long count)
    {
        long end = first + count;
        for (long k = first; k < end; k++)
        {
            if (!table.IsPresent(k)) continue;
            long runEnd = k + 1;
            while (runEnd < end && table.IsPresent(runEnd)) runEnd++;
            AppendRecord(new StreamRecord(StreamRecordType.ZeroPages, (uint)region, (ulong)k, (uint)(runEnd - k)));
            for (long z = k; z < runEnd; z++) table.MarkAbsent(z);
            k = runEnd;
        }
        Interlocked.Add(ref _zeroPages, count);
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
                AppendRecord(new StreamRecord(StreamRecordType.State, 0, (ulong)state.Length, 0));
                Append(state);
                AppendRecord(new StreamRecord(StreamRecordType.Trailer, 0, (ulong)SnapshotLayout.TrailerLength(_info.Regions), 0));
                TrailerChecksum = TrailerCodec.Write(_info.Regions, _tables, stateHash, _snapshotId, Append);
                AppendRecord(new StreamRecord(StreamRecordType.End, 0, (ulong)BytesWritten, 0));
                _out.Flush();
                _state = StateCompleted;
                if (!_leaveOpen) _destination.Dispose();
            }
            catch
            {
                AbortCore();
                throw;
            }
        }
    }

    private void AppendRecord(StreamRecord record)
    {
        record.Encode(_record);
        Append(_record);
    }

    private void Append(ReadOnlySpan<byte> data)
    {
        _out.Write(data);
        Interlocked.Add(ref _bytesWritten, data.Length);
    }

    public void Interrupt()
    {
        if (_destination is KvmSharp.PipeWriteStream pipe) pipe.Interrupt();
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
        // Buffered records are dropped: without an end record the stream can never be converted.
        if (_leaveOpen) return;
        try { _destination.Dispose(); }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
    }

    private void ThrowIfNotOpen()
    {
        int s = _state;
        if (s == StateAborted)
        {
            // Other writers report the first failure's cause, not a bare "aborted" that would hide it.
            if (_failure is { } cause) throw new IOException(cause.Message, cause);
            throw new OperationCanceledException("the snapshot was aborted");
        }
        if (s == StateCompleted) throw new InvalidOperationException("the snapshot is already complete");
    }

    public void Dispose()
    {
        if (_state == StateOpen) Abort();
    }
}
