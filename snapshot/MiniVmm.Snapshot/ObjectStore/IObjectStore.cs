namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>
/// The few object-store calls a snapshot needs (S3 semantics: multipart upload, ranged reads). The engines and the
/// format never see an SDK: the S3 implementation lives in its own assembly (MiniVmm.Snapshot.S3).
/// Every call may throw <see cref="ObjectStoreException"/>; <see cref="ObjectStoreException.Unreachable"/> says the
/// store could not be reached (as opposed to refusing the request).
/// </summary>
public interface IObjectStore : IDisposable
{
    /// <summary>Starts a multipart upload of <paramref name="key"/>; returns its upload id.</summary>
    Task<string> StartUploadAsync(string bucket, string key, CancellationToken cancel);

    /// <summary>Uploads part <paramref name="partNumber"/> (1-based); returns its ETag. Uploading a number again replaces it.</summary>
    Task<string> UploadPartAsync(string bucket, string key, string uploadId, int partNumber, ReadOnlyMemory<byte> data, CancellationToken cancel);

    /// <summary>Completes the upload from the parts (number, ETag) in ascending order: the object appears atomically.</summary>
    Task CompleteUploadAsync(string bucket, string key, string uploadId, IReadOnlyList<(int Number, string ETag)> parts, CancellationToken cancel);

    /// <summary>Abandons the upload (its parts are freed). Best effort.</summary>
    Task AbortUploadAsync(string bucket, string key, string uploadId, CancellationToken cancel);

    /// <summary>The object's length and the ETag of its current version, or null when it does not exist.</summary>
    Task<ObjectStat?> StatAsync(string bucket, string key, CancellationToken cancel);

    /// <summary>
    /// Reads exactly <c>destination.Length</c> bytes from <paramref name="offset"/> (a range GET). With
    /// <paramref name="etag"/>, only from that version of the object (If-Match): an object replaced since is a
    /// non-transient <see cref="ObjectStoreException"/> saying so, never bytes of another version.
    /// </summary>
    Task ReadAsync(string bucket, string key, long offset, Memory<byte> destination, string? etag, CancellationToken cancel);

    /// <summary>
    /// The keys of the bucket that start with <paramref name="prefix"/>, in the store's order, at most
    /// <paramref name="limit"/> (an incremental link's parents are looked for among its neighbours this way).
    /// </summary>
    Task<IReadOnlyList<string>> ListAsync(string bucket, string prefix, int limit, CancellationToken cancel);

    /// <summary>Stores a small object in one request (working-set files, tests).</summary>
    Task PutAsync(string bucket, string key, ReadOnlyMemory<byte> data, CancellationToken cancel);

    /// <summary>Creates the bucket (tests and set-up).</summary>
    Task CreateBucketAsync(string bucket, CancellationToken cancel);
}

/// <summary>An object's length and the ETag that names this version of it (reads are pinned to it).</summary>
public sealed record ObjectStat(long Length, string ETag);

/// <summary>An object-store call that failed; <see cref="Unreachable"/>: no answer from the store at all.</summary>
public sealed class ObjectStoreException(string message, bool unreachable, bool transient, Exception? inner = null)
    : IOException(message, inner)
{
    public bool Unreachable { get; } = unreachable;

    /// <summary>Worth retrying (a timeout, a 5xx, a dropped connection).</summary>
    public bool Transient { get; } = transient;
}
