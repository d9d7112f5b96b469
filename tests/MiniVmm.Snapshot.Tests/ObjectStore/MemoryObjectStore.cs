// S3 defines ETags and Content-MD5 as MD5 digests: the fake store must compute the same ones.
#pragma warning disable CA5351

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

    private readonly ConcurrentDictionary<(string, int), int> _partsInProgress = new();
    private readonly ConcurrentDictionary<string, bool> _completing = new();

    public volatile bool Down;
    public int PartUploads;
    /// <summary>Part uploads that began while another of the same part of the same upload was in progress.</summary>
    public int PartOverlaps;
    /// <summary>Part uploads stored after their upload's completion had begun (or arriving after it ended).</summary>
    public int LateParts;
    /// <summary>Awaited between taking a part's body and storing it (part number): holds or slows uploads.</summary>
    public Func<int, Task>? BeforePartStored;
    /// <summary>Awaited before a range read is answered (offset, the caller's token).</summary>
    public Func<long, CancellationToken, Task>? BeforeRead;
    public volatile bool Disposed;
    /// <summary>When set, what every stat answers (a store describing the object wrongly).</summary>
    public ObjectStat? StatAnswer;
    /// <summary>Range reads still running inside the store when it was disposed.</summary>
    public int UsedAfterDispose;
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

    public async Task<string> UploadPartAsync(string bucket, string key, string uploadId, int partNumber, ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        Check();
        if (partNumber is < 1 or > 10000) throw new ObjectStoreException("bad part number", false, false);
        if (!_uploads.TryGetValue(uploadId, out var parts)) { Interlocked.Increment(ref LateParts); throw new ObjectStoreException("NoSuchUpload", false, false); }
        // The body is what the caller sent when the request started, whatever it does with its buffer meanwhile.
        byte[] body = data.ToArray();
        if (_partsInProgress.AddOrUpdate((uploadId, partNumber), 1, (_, n) => n + 1) > 1) Interlocked.Increment(ref PartOverlaps);
        try
        {
            if (BeforePartStored is { } hook) await hook(partNumber).ConfigureAwait(false);
            if (_completing.ContainsKey(uploadId)) Interlocked.Increment(ref LateParts);
            parts[partNumber] = body;
        }
        finally
        {
            _partsInProgress.AddOrUpdate((uploadId, partNumber), 0, (_, n) => n - 1);
        }
        Interlocked.Increment(ref PartUploads);
        // Like S3's, the ETag names the content: a stale one in the completion list would fail or assemble old bytes.
        return $"etag-{partNumber}-{Convert.ToHexString(System.Security.Cryptography.MD5.HashData(body))}";
    }

    public Task CompleteUploadAsync(string bucket, string key, string uploadId, IReadOnlyList<(int Number, string ETag)> parts, CancellationToken cancel)
    {
        Check();
        _completing[uploadId] = true;
        var stored = _uploads[uploadId];
        var body = new List<byte>();
        for (int i = 0; i < parts.Count; i++)
        {
            if (parts[i].Number != i + 1) throw new ObjectStoreException("parts out of order", false, false);
            var data = stored[parts[i].Number];
            if (parts[i].ETag != $"etag-{parts[i].Number}-{Convert.ToHexString(System.Security.Cryptography.MD5.HashData(data))}")
                throw new ObjectStoreException("InvalidPart (the ETag is not the stored part's)", false, false);
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

    public Task<IReadOnlyList<string>> ListAsync(string bucket, string prefix, int limit, CancellationToken cancel)
    {
        Check();
        IReadOnlyList<string> keys = [.. _objects.Keys.Where(k => k.StartsWith($"{bucket}/{prefix}", StringComparison.Ordinal))
            .Select(k => k[(bucket.Length + 1)..]).Order(StringComparer.Ordinal).Take(limit)];
        return Task.FromResult(keys);
    }

    public Task<ObjectStat?> StatAsync(string bucket, string key, CancellationToken cancel)
    {
        Check();
        if (StatAnswer is { } answer) return Task.FromResult<ObjectStat?>(answer);
        return Task.FromResult(_objects.TryGetValue($"{bucket}/{key}", out var o) ? new ObjectStat(o.Length, ETagOf(o)) : null);
    }

    /// <summary>Like S3's for a single PUT: the content's MD5 (so a replaced object has another ETag).</summary>
    public static string ETagOf(byte[] content) => $"\"{Convert.ToHexString(System.Security.Cryptography.MD5.HashData(content))}\"";

    public async Task ReadAsync(string bucket, string key, long offset, Memory<byte> destination, string? etag, CancellationToken cancel)
    {
        Check();
        Interlocked.Increment(ref RangeReads);
        try
        {
            if (BeforeRead is { } hook) await hook(offset, cancel).ConfigureAwait(false);
            var content = _objects[$"{bucket}/{key}"];
            if (etag is not null && ETagOf(content) != etag)
                throw new ObjectStoreException("412 PreconditionFailed: the object changed", unreachable: false, transient: false);
            content.AsMemory((int)offset, destination.Length).CopyTo(destination);
        }
        finally
        {
            if (Disposed) Interlocked.Increment(ref UsedAfterDispose);
        }
    }

    public Task PutAsync(string bucket, string key, ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        Check();
        _objects[$"{bucket}/{key}"] = data.ToArray();
        return Task.CompletedTask;
    }

    public Task CreateBucketAsync(string bucket, CancellationToken cancel) => Task.CompletedTask;

    public void Dispose() => Disposed = true;
}
