using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>
/// A snapshot object read with range GETs in 2 MiB blocks (<see cref="BlockMap"/>), for <see cref="SnapshotFile"/>:
/// header, state and trailer are validated through it first, then lazy restore's fault loop and prefetcher read pages
/// through it (and check their checksums before the guest sees them). Each block is fetched once even when several
/// readers want it; a read starts a read-ahead of the next <see cref="ReadAhead"/> blocks; at most
/// <see cref="CacheBlocks"/> blocks stay cached (least recently used dropped). Transient failures are retried with
/// backoff; a read gives up after <see cref="ReadDeadline"/> (an exception, never a thread blocked for ever), and
/// <see cref="FailedUnreachable"/> then says whether the store could not be reached. Every read is pinned to the ETag
/// the object had when it was opened: one replaced during the restore fails the read instead of mixing two versions.
/// </summary>
public sealed class ObjectStoreBytes : ISnapshotBytes
{
    public const int ReadAhead = 4;
    public const int CacheBlocks = 32;
    public static readonly TimeSpan ReadDeadline = TimeSpan.FromSeconds(20);
    /// <summary>How long <see cref="Dispose"/> waits for cancelled fetches to end before it disposes the store anyway.</summary>
    public static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(5);

    private readonly IObjectStore _store;
    private readonly ObjectUri _uri;
    private readonly BlockMap _map;
    private readonly BlockCacheDirectory? _cache;
    private readonly object _gate = new();
    // The LRU list's node lives in the dictionary, so a hit moves it to the front without allocating (a fault path).
    private readonly Dictionary<long, LinkedListNode<Cached>> _blocks = [];
    private readonly LinkedList<Cached> _lru = new();
    private readonly CancellationTokenSource _cancel = new();
    private readonly HashSet<Task> _fetching = []; // running fetches, evicted or not: the store is in use until they end
    private bool _disposed;
    private long _fetches;

    private ObjectStoreBytes(IObjectStore store, ObjectUri uri, ObjectStat stat, BlockCacheDirectory? cache)
    {
        _store = store;
        _uri = uri;
        Length = stat.Length;
        ETag = stat.ETag;
        _map = new BlockMap(stat.Length);
        _cache = cache;
    }

    /// <summary>
    /// Asks the store for the object's length; a missing object is a <see cref="SnapshotFormatException"/>. Takes
    /// ownership of <paramref name="store"/>: the result disposes it, and so does Open when it throws. With
    /// <paramref name="cacheDirectory"/>, blocks are looked up in (and added to) that local cache before the store is
    /// asked (<see cref="BlockCacheDirectory"/>).
    /// </summary>
    public static ObjectStoreBytes Open(IObjectStore store, ObjectUri uri, string? cacheDirectory = null)
    {
        try
        {
            var stat = ObjectStoreRetry.RunWithin(c => store.StatAsync(uri.Bucket, uri.Key, c), ReadDeadline, uri.ToString());
            if (stat is null) throw new SnapshotFormatException($"snapshot '{uri}' does not exist in the store");
            if (stat.Length < 0 || string.IsNullOrEmpty(stat.ETag))
                throw new ObjectStoreException($"{uri}: the store described the object with length {stat.Length} and ETag '{stat.ETag}'", unreachable: false, transient: false);
            var cache = cacheDirectory is null ? null : new BlockCacheDirectory(cacheDirectory, uri, stat);
            return new ObjectStoreBytes(store, uri, stat, cache);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    public long Length { get; }

    /// <summary>The version of the object that was opened: every range read asks for it (If-Match).</summary>
    public string ETag { get; }

    /// <summary>Range GETs issued so far (one per block fetched from the store, none for a block found in the cache).</summary>
    public long Fetches => Interlocked.Read(ref _fetches);

    /// <summary>Blocks read from the local cache directory instead of the store.</summary>
    public long CacheHits => Interlocked.Read(ref _cacheHits);
    private long _cacheHits;

    /// <summary>True once a read failed because the store could not be reached (as opposed to a bad object).</summary>
    public bool FailedUnreachable { get; private set; }

    public int Read(Span<byte> destination, long offset)
    {
        if (offset >= Length || destination.Length == 0) return 0;
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        int total = (int)Math.Min(destination.Length, Length - offset);
        for (int at = 0; at < total;)
        {
            var (block, within, length) = _map.PieceAt(offset, total, at);
            byte[] data = Wait(Block(block, readAhead: true));
            data.AsSpan(within, length).CopyTo(destination.Slice(at, length));
            at += length;
        }
        return total;
    }

    private byte[] Wait(Task<byte[]> task)
    {
        try
        {
            if (!task.Wait(ReadDeadline))
            {
                FailedUnreachable = true;
                throw new ObjectStoreException($"{_uri}: the store did not answer a range read within {ReadDeadline.TotalSeconds:0} s", unreachable: true, transient: false);
            }
            return task.Result;
        }
        catch (AggregateException e)
        {
            var cause = e.GetBaseException();
            if (cause is ObjectStoreException { Unreachable: true }) FailedUnreachable = true;
            if (cause is IOException io) throw new IOException(io.Message, io);
            throw new IOException($"{_uri}: {cause.Message}", cause);
        }
    }

    /// <summary>The block's fetch (started now if it is neither cached nor under way), plus read-ahead of the next ones.</summary>
    private Task<byte[]> Block(long block, bool readAhead)
    {
        Task<byte[]> task;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_blocks.TryGetValue(block, out var node))
            {
                // A failed fetch is not kept: the next read of the block tries again.
                if (node.Value.Data.IsFaulted || node.Value.Data.IsCanceled) node.Value.Data = Fetch(block);
                _lru.Remove(node);
                _lru.AddFirst(node);
                task = node.Value.Data;
            }
            else
            {
                task = Fetch(block);
                _blocks[block] = _lru.AddFirst(new Cached(block, task));
                while (_lru.Count > CacheBlocks)
                {
                    _blocks.Remove(_lru.Last!.Value.Block);
                    _lru.RemoveLast();
                }
            }
        }
        if (readAhead)
            for (long next = block + 1; next <= block + ReadAhead && next < _map.BlockCount; next++)
            {
                bool have;
                lock (_gate) have = _disposed || _blocks.ContainsKey(next);
                if (!have) Block(next, readAhead: false);
            }
        return task;
    }

    /// <summary>A cached block: its number (to evict it from the dictionary) and its fetch.</summary>
    private sealed class Cached(long block, Task<byte[]> data)
    {
        public long Block { get; } = block;
        public Task<byte[]> Data { get; set; } = data;
    }

    /// <summary>Starts the range GET of a block and registers it as running (under _gate).</summary>
    private Task<byte[]> Fetch(long block)
    {
        var (offset, length) = _map.RangeOf(block);
        var task = Task.Run(async () =>
        {
            var data = new byte[length];
            if (_cache is not null && _cache.TryRead(block, data))
            {
                Interlocked.Increment(ref _cacheHits);
                return data;
            }
            Interlocked.Increment(ref _fetches);
            await ObjectStoreRetry.Run(async c =>
            {
                await _store.ReadAsync(_uri.Bucket, _uri.Key, offset, data, ETag, c).ConfigureAwait(false);
                return true;
            }, _cancel.Token).ConfigureAwait(false);
            _cache?.Store(block, data);
            return data;
        });
        _fetching.Add(task);
        task.ContinueWith(t => { lock (_gate) _fetching.Remove(t); }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return task;
    }

    /// <summary>
    /// Cancels the fetches and waits (at most <see cref="DisposeWait"/>) for them to end before disposing the store: a
    /// request still running inside the SDK must not find its client disposed under it. One that outlives the wait
    /// (a store that ignores cancellation) keeps the store until it ends: the store is disposed after the last one.
    /// </summary>
    public void Dispose()
    {
        Task[] running;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            running = [.. _fetching];
        }
        _cancel.Cancel();
        bool ended;
        try { ended = Task.WaitAll(running, DisposeWait); }
        catch (AggregateException) { ended = running.All(t => t.IsCompleted); } // cancelled or failed: ended
        if (ended) _store.Dispose();
        else Task.WhenAll(running).ContinueWith(_ => _store.Dispose(), TaskScheduler.Default);
    }
}

/// <summary>How an object of a given length is cut into 2 MiB blocks (the unit of a range GET), and reads into pieces.</summary>
public sealed class BlockMap(long length, int blockSize = BlockMap.DefaultBlockSize)
{
    public const int DefaultBlockSize = 2 << 20;

    public long Length { get; } = length >= 0 ? length : throw new ArgumentOutOfRangeException(nameof(length));
    public int BlockSize { get; } = blockSize > 0 ? blockSize : throw new ArgumentOutOfRangeException(nameof(blockSize));
    public long BlockCount => (Length + BlockSize - 1) / BlockSize;

    /// <summary>The object range of a block (the last one may be short).</summary>
    public (long Offset, int Length) RangeOf(long block)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(block);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(block, BlockCount);
        long offset = block * BlockSize;
        return (offset, (int)Math.Min(BlockSize, Length - offset));
    }

    /// <summary>
    /// The pieces of the read [offset, offset+count): block, offset inside it, length, offset in the caller's buffer.
    /// The read must lie inside the object.
    /// </summary>
    public IEnumerable<(long Block, int Within, int Length, int At)> Split(long offset, int count)
    {
        if (offset < 0 || count < 0 || offset > Length || count > Length - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, +{count}) is outside the object ({Length} bytes)");
        for (int at = 0; at < count;)
        {
            var (block, within, length) = PieceAt(offset, count, at);
            yield return (block, within, length, at);
            at += length;
        }
    }

    /// <summary>The piece of the read [offset, offset+count) that starts <paramref name="at"/> bytes into it (a loop over
    /// these is <see cref="Split"/> without an iterator: the fault path's reads allocate nothing).</summary>
    public (long Block, int Within, int Length) PieceAt(long offset, int count, int at)
    {
        long position = offset + at;
        long block = position / BlockSize;
        int within = (int)(position - block * BlockSize);
        return (block, within, Math.Min(count - at, BlockSize - within));
    }
}
