using System.Collections.Concurrent;
using MiniVmm.Snapshot.ObjectStore;

namespace MiniVmm.Snapshot.Tests.ObjectStore;

/// <summary>
/// An in-memory store with S3's multipart rules (parts replace by number, all but the last at least 5 MiB, the object
/// appears only on completion), and switches for failure: <see cref="Down"/> (unreachable), <see cref="FailReadsAt"/>.
/// </summary>
internal sealed class MemoryObjectStore : IObjectStore
{
    private readonly ConcurrentDictionary<string, byte[]> _objects = new();
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<int, byte[]>> _uploads = new();
    private int _next;

    public volatile bool Down;
    public int PartUploads;
    public int RangeReads;
    public readonly ConcurrentBag<string> Aborted = [];

    public IReadOnlyDictionary<string, byte[]> Objects => _objects;
    public int OpenUploads => _uploads.Count;

    private void Check()
    {
        if (Down) throw new ObjectStoreException("down", unreachable: true, transient: true);
    }

    public Task<string> StartUploadAsync(string bucket, string key, CancellationToken cancel)
    {
        Check();
        string id = $"{bucket}/{key}#{Interlocked.Increment(ref _next)}";
        _uploads[id] = new();
        return Task.FromResult(id);
    }

    public Task<string> UploadPartAsync(string bucket, string key, string uploadId, int partNumber, ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        Check();
        if (partNumber is < 1 or > 10000) throw new ObjectStoreException("bad part number", false, false);
        _uploads[uploadId][partNumber] = data.ToArray();
        Interlocked.Increment(ref PartUploads);
        return Task.FromResult($"etag-{partNumber}-{data.Length}");
    }

    public Task CompleteUploadAsync(string bucket, string key, string uploadId, IReadOnlyList<(int Number, string ETag)> parts, CancellationToken cancel)
    {
        Check();
        var stored = _uploads[uploadId];
        var body = new List<byte>();
        for (int i = 0; i < parts.Count; i++)
        {
            if (parts[i].Number != i + 1) throw new ObjectStoreException("parts out of order", false, false);
            var data = stored[parts[i].Number];
            if (i < parts.Count - 1 && data.Length < MultipartPlan.MinPartSize) throw new ObjectStoreException("EntityTooSmall", false, false);
            body.AddRange(data);
        }
        _objects[$"{bucket}/{key}"] = body.ToArray();
        _uploads.TryRemove(uploadId, out _);
        return Task.CompletedTask;
    }

    public Task AbortUploadAsync(string bucket, string key, string uploadId, CancellationToken cancel)
    {
        _uploads.TryRemove(uploadId, out _);
        Aborted.Add(uploadId);
        return Task.CompletedTask;
    }

    public Task<long?> GetLengthAsync(string bucket, string key, CancellationToken cancel)
    {
        Check();
        return Task.FromResult(_objects.TryGetValue($"{bucket}/{key}", out var o) ? (long?)o.Length : null);
    }

    public Task ReadAsync(string bucket, string key, long offset, Memory<byte> destination, CancellationToken cancel)
    {
        Check();
        Interlocked.Increment(ref RangeReads);
        _objects[$"{bucket}/{key}"].AsMemory((int)offset, destination.Length).CopyTo(destination);
        return Task.CompletedTask;
    }

    public Task PutAsync(string bucket, string key, ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        Check();
        _objects[$"{bucket}/{key}"] = data.ToArray();
        return Task.CompletedTask;
    }

    public Task CreateBucketAsync(string bucket, CancellationToken cancel) => Task.CompletedTask;

    public void Dispose() { }
}
