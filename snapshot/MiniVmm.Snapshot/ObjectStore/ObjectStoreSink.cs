using System.Buffers;
using System.Diagnostics;
using MiniVmm.Snapshot.Format;
using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>
/// Writes the page-addressed file form of a snapshot to an object store as one multipart upload, while the guest runs.
/// The engines' page writes land in a sparse local spool file (the ordinary file writer, unsynced), so a slow, stalled
/// or unreachable store never holds a snapshot thread and so never the guest; a part (<see cref="MultipartPlan"/>) is
/// uploaded in the background as soon as every guest page inside it has been saved, and again if a page of it is saved
/// again. <see cref="Complete"/> finishes the spool (state, trailer, final header), uploads what is left (the header's
/// part last of all, the tail) within the deadline, and completes the upload: the object appears whole or not at all.
/// Memory held: at most <see cref="Concurrency"/> part buffers.
/// </summary>
public sealed class ObjectStoreSink : ISnapshotSink
{
    public const int Concurrency = 4;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly IObjectStore _store;
    private readonly ObjectUri _uri;
    private readonly ISnapshotSink _spool;
    private readonly string _spoolPath;
    private readonly SafeFileHandle _spoolRead;
    private readonly MultipartPlan _plan;
    private readonly PageBitmap[] _seen;
    private readonly long[] _seenInPart;
    private readonly bool[] _dirty, _queued, _uploading;
    private readonly string?[] _etags;
    // _gate guards the whole upload state below: the phase, which parts are queued, uploading and dirty, their ETags,
    // the in-flight early uploads and the first failure. An early upload is decided and registered in one critical
    // section, so once Complete has left Running no early upload can start, and the ones it saw are all it waits for.
    private readonly object _gate = new();
    private readonly Queue<int> _ready = new();
    private readonly CancellationTokenSource _cancel = new();
    private readonly HashSet<Task> _inFlight = [];
    private readonly TimeSpan _deadline;
    private readonly string _uploadId;
    private Exception? _failure;
    private Phase _phase = Phase.Running;

    private enum Phase
    {
        /// <summary>Pages are being written; early parts go up in the background.</summary>
        Running,
        /// <summary>Complete (or Abort) has begun: no early upload starts any more.</summary>
        Closing,
        /// <summary>The object is complete or the upload abandoned.</summary>
        Finished,
    }

    private ObjectStoreSink(IObjectStore store, ObjectUri uri, ISnapshotSink spool, string spoolPath, SafeFileHandle spoolRead,
        MultipartPlan plan, IReadOnlyList<SnapshotRegion> regions, string uploadId, TimeSpan deadline)
    {
        _store = store;
        _uri = uri;
        _spool = spool;
        _spoolPath = spoolPath;
        _spoolRead = spoolRead;
        _plan = plan;
        _uploadId = uploadId;
        _deadline = deadline;
        _seen = regions.Select(r => new PageBitmap(r.PageCount)).ToArray();
        int parts = plan.LastPart + 1;
        _seenInPart = new long[parts];
        _dirty = new bool[parts];
        _queued = new bool[parts];
        _uploading = new bool[parts];
        _etags = new string?[parts];
    }

    /// <summary>
    /// Starts the upload (the one call that waits on the store before the snapshot starts: an unreachable store fails
    /// here, before any guest page is touched) and the spool in <paramref name="spoolDirectory"/>. <paramref name="deadline"/>
    /// bounds <see cref="Complete"/>'s wait for the store (infinite: none).
    /// </summary>
    public static ObjectStoreSink Create(IObjectStore store, ObjectUri uri, SnapshotHeaderInfo info, string spoolDirectory, TimeSpan deadline,
        long partSize = MultipartPlan.DefaultPartSize, Guid? snapshotId = null, DateTimeOffset? createdAt = null)
    {
        var plan = new MultipartPlan(info.Regions, partSize);
        using var startCancel = new CancellationTokenSource(StartTimeout);
        string uploadId = store.StartUploadAsync(uri.Bucket, uri.Key, startCancel.Token).GetAwaiter().GetResult();
        string spoolPath = Path.Combine(spoolDirectory, $"minivmm-s3-spool-{Environment.ProcessId}-{Guid.NewGuid():N}");
        ISnapshotSink? spool = null;
        try
        {
            spool = SnapshotFileSink.Create(spoolPath, info, fsync: false, createdAt: createdAt, snapshotId: snapshotId);
            // A handle of our own: it keeps reading the same file after Complete renames PATH.partial to PATH.
            var read = File.OpenHandle(spoolPath + SnapshotFormat.PartialSuffix, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return new ObjectStoreSink(store, uri, spool, spoolPath, read, plan, info.Regions, uploadId, deadline);
        }
        catch
        {
            spool?.Abort();
            store.AbortUploadAsync(uri.Bucket, uri.Key, uploadId, CancellationToken.None).Wait(TimeSpan.FromSeconds(5));
            throw;
        }
    }

    public bool IsSeekable => true;
    public long PagesWritten => _spool.PagesWritten;
    public long ZeroPages => _spool.ZeroPages;
    public long BytesWritten => _spool.BytesWritten;
    public TimeSpan FsyncTime => TimeSpan.Zero;
    public Guid SnapshotId => _spool.SnapshotId;
    public ulong TrailerChecksum => _spool.TrailerChecksum;

    /// <summary>Bytes the store has acknowledged (parts uploaded, counting re-uploads).</summary>
    public long BytesUploaded => Interlocked.Read(ref _bytesUploaded);
    private long _bytesUploaded;

    /// <summary>Parts uploaded while the snapshot was still running (before <see cref="Complete"/>).</summary>
    public int EarlyParts { get; private set; }

    public long WritePages(int region, long firstPage, ReadOnlySpan<byte> pages) => Store(region, firstPage, pages, inPlace: false);

    public long WritePrivatePages(int region, long firstPage, ReadOnlySpan<byte> pages) => Store(region, firstPage, pages, inPlace: true);

    private long Store(int region, long firstPage, ReadOnlySpan<byte> pages, bool inPlace)
    {
        if (Failure is { } failure) throw new IOException(failure.Message, failure);
        long written = inPlace ? _spool.WritePrivatePages(region, firstPage, pages) : _spool.WritePages(region, firstPage, pages);
        long count = pages.Length / SnapshotFormat.PageSize;
        lock (_gate)
        {
            int last = -1;
            for (long p = firstPage; p < firstPage + count; p++)
            {
                int part = _plan.PartOf(region, p);
                if (!_seen[region].Get(p))
                {
                    _seen[region].Set(p);
                    _seenInPart[part]++;
                }
                _dirty[part] = true;
                if (part != last && last >= 0) MaybeQueue(last);
                last = part;
            }
            if (last >= 0) MaybeQueue(last);
        }
        PumpUploads();
        return written;
    }

    /// <summary>Queues an early part whose every page was saved and that changed since its last upload (under _gate).</summary>
    private void MaybeQueue(int part)
    {
        if (!_plan.IsEarly(part) || _queued[part] || !_dirty[part] || _seenInPart[part] < _plan.PagesIn(part)) return;
        _queued[part] = true;
        _ready.Enqueue(part);
    }

    /// <summary>The first failure of an early upload, if any.</summary>
    private Exception? Failure
    {
        get { lock (_gate) return _failure; }
    }

    /// <summary>Records a failure; the first one wins (it is the cause, later ones are usually its consequences).</summary>
    private void Fail(Exception failure)
    {
        lock (_gate) _failure ??= failure;
    }

    /// <summary>
    /// Starts uploads for ready parts while fewer than <see cref="Concurrency"/> run; never waits. Whether a part may
    /// start and its registration as in flight happen under one lock, so Complete never misses an upload it must wait for.
    /// </summary>
    private void PumpUploads()
    {
        lock (_gate)
        {
            while (_phase == Phase.Running && _failure is null && _ready.Count > 0 && _inFlight.Count < Concurrency)
            {
                int part = _ready.Dequeue();
                _queued[part] = false;
                if (_uploading[part]) continue; // stays dirty: uploaded again at completion
                _uploading[part] = true;
                _dirty[part] = false;
                EarlyParts++;
                // Task.Run only schedules: the upload and its continuation take _gate themselves, after we leave it.
                var task = Task.Run(() => UploadPart(part, fileLength: 0, _cancel.Token));
                _inFlight.Add(task);
                task.ContinueWith(t => Finished(part, t), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
    }

    /// <summary>An early upload ended: its slot is free, its failure (not a cancellation) recorded.</summary>
    private void Finished(int part, Task upload)
    {
        lock (_gate)
        {
            _uploading[part] = false;
            _inFlight.Remove(upload);
            if (upload.Exception is { } e) _failure ??= e.GetBaseException();
        }
        PumpUploads();
    }

    /// <summary>Reads the part from the spool and uploads it, retrying transient failures with backoff.</summary>
    private async Task UploadPart(int part, long fileLength, CancellationToken cancel)
    {
        var (offset, length) = _plan.RangeOf(part, fileLength == 0 ? _plan.MemoryEnd : fileLength);
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)length);
        try
        {
            int read = RandomAccess.Read(_spoolRead, buffer.AsSpan(0, (int)length), offset);
            // A sparse spool reads zeros past its current end; short reads happen only at the end of the file.
            buffer.AsSpan(read, (int)length - read).Clear();
            string etag = await ObjectStoreRetry.Run(c => _store.UploadPartAsync(_uri.Bucket, _uri.Key, _uploadId, part + 1,
                buffer.AsMemory(0, (int)length), c), cancel).ConfigureAwait(false);
            lock (_gate) _etags[part] = etag;
            Interlocked.Add(ref _bytesUploaded, length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public void Complete(IReadOnlyList<StateSection> sections)
    {
        Task[] running;
        Exception? failure;
        lock (_gate)
        {
            if (_phase != Phase.Running) throw new InvalidOperationException("the snapshot is already complete or aborted");
            _phase = Phase.Closing; // no early upload starts from here on: the ones in flight now are all there are
            failure = _failure;
            running = [.. _inFlight];
        }
        if (failure is not null)
        {
            Abort();
            throw new IOException($"{_uri}: {failure.Message}", failure);
        }
        var clock = Stopwatch.StartNew();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token);
        if (_deadline != Timeout.InfiniteTimeSpan) deadline.CancelAfter(_deadline);
        try
        {
            _spool.Complete(sections);
            long fileLength = RandomAccess.GetLength(_spoolRead);
            // Every early upload must have landed (its ETag recorded) before a part is uploaded again or the upload
            // completed: one landing later could replace newer content or leave a stale ETag in the list.
            WaitAll(running, deadline.Token);
            List<int> remaining;
            lock (_gate)
            {
                if (_failure is { } late) throw new IOException(late.Message, late);
                remaining = [.. Enumerable.Range(0, _plan.LastPart + 1).Where(p => _dirty[p] || _etags[p] is null || p == 0 || p == _plan.LastPart)];
            }
            // The header's part goes last: the object is correct only with it.
            UploadAll(remaining.Where(p => p != 0), fileLength, deadline.Token);
            UploadAll(remaining.Where(p => p == 0), fileLength, deadline.Token);
            List<(int, string)> parts;
            lock (_gate) parts = [.. Enumerable.Range(0, _plan.LastPart + 1).Select(p => (p + 1, _etags[p]!))];
            Wait(ObjectStoreRetry.Run(async c => { await _store.CompleteUploadAsync(_uri.Bucket, _uri.Key, _uploadId, parts, c).ConfigureAwait(false); return true; },
                deadline.Token), deadline.Token);
            UploadTime = clock.Elapsed;
            lock (_gate) _phase = Phase.Finished;
        }
        catch (Exception e)
        {
            lock (_gate) _phase = Phase.Finished;
            _spool.Abort();
            AbortUpload();
            CleanSpool();
            if (e is OperationCanceledException && !_cancel.IsCancellationRequested)
                throw new ObjectStoreException($"{_uri}: the store did not take the snapshot within {_deadline.TotalSeconds:0.#} s", unreachable: true, transient: false, e);
            if (e is OperationCanceledException) throw new OperationCanceledException("the snapshot was aborted", e);
            throw;
        }
        CleanSpool();
    }

    /// <summary>Time <see cref="Complete"/> spent on the store after the spool was complete.</summary>
    public TimeSpan UploadTime { get; private set; }

    private void UploadAll(IEnumerable<int> parts, long fileLength, CancellationToken cancel)
    {
        using var gate = new SemaphoreSlim(Concurrency);
        var tasks = parts.Select(async p =>
        {
            await gate.WaitAsync(cancel).ConfigureAwait(false);
            try { await UploadPart(p, fileLength, cancel).ConfigureAwait(false); }
            finally { gate.Release(); }
        }).ToArray();
        WaitAll(tasks, cancel);
    }

    private static void WaitAll(Task[] tasks, CancellationToken cancel)
    {
        try { Task.WaitAll(tasks, cancel); }
        catch (AggregateException e) { throw e.GetBaseException(); }
    }

    private static void Wait(Task task, CancellationToken cancel)
    {
        try { task.Wait(cancel); }
        catch (AggregateException e) { throw e.GetBaseException(); }
    }

    public void Interrupt() => _cancel.Cancel();

    public void Abort()
    {
        lock (_gate)
        {
            if (_phase == Phase.Finished) return;
            _phase = Phase.Finished;
        }
        _cancel.Cancel();
        _spool.Abort();
        AbortUpload();
        CleanSpool();
    }

    private void AbortUpload()
    {
        Task[] running;
        lock (_gate) running = _inFlight.ToArray();
        try { Task.WaitAll(running, TimeSpan.FromSeconds(5)); }
        catch (AggregateException) { }
        using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try { _store.AbortUploadAsync(_uri.Bucket, _uri.Key, _uploadId, quick.Token).Wait(TimeSpan.FromSeconds(6)); }
        catch (AggregateException) { }
    }

    private void CleanSpool()
    {
        _spoolRead.Dispose();
        try { File.Delete(_spoolPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        try { File.Delete(_spoolPath + SnapshotFormat.PartialSuffix); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        Abort();
        _spool.Dispose();
        _cancel.Dispose();
    }
}
