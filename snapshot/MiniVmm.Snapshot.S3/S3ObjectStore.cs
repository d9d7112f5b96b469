using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using MiniVmm.Snapshot.ObjectStore;

namespace MiniVmm.Snapshot.S3;

/// <summary>
/// <see cref="IObjectStore"/> over the AWS SDK for .NET (AWSSDK.S3): path-style addressing (a self-hosted store has no
/// per-bucket DNS names), Nagle off (small range reads otherwise wait for the delayed ACK), no SDK retries (the callers
/// retry with their own bounded backoff and deadline), checksums only where the API requires them (Ceph 16.2 does not
/// accept the SDK's default trailing CRC32 on uploads). Credentials are held only by the SDK client; nothing here prints
/// or stores them.
/// </summary>
public sealed class S3ObjectStore : IObjectStore
{
    private readonly AmazonS3Client _client;
    private readonly bool _https; // the SDK signs payloads over plain http (it refuses unsigned ones there)

    public S3ObjectStore(S3Settings settings)
    {
        var config = new AmazonS3Config
        {
            ServiceURL = settings.Endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = settings.Region,
            MaxErrorRetry = 0,
            Timeout = settings.RequestTimeout,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            HttpClientFactory = new NoDelayHttpClientFactory(settings.ConnectTimeout),
        };
        _https = settings.Endpoint.StartsWith("https:", StringComparison.OrdinalIgnoreCase);
        AWSCredentials credentials = settings.SessionToken is { } token
            ? new SessionAWSCredentials(settings.AccessKey, settings.SecretKey, token)
            : new BasicAWSCredentials(settings.AccessKey, settings.SecretKey);
        _client = new AmazonS3Client(credentials, config);
    }

    public Task<string> StartUploadAsync(string bucket, string key, CancellationToken cancel) => Call(async () =>
        (await _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = bucket, Key = key }, cancel)
            .ConfigureAwait(false)).UploadId, bucket, key);

    public Task<string> UploadPartAsync(string bucket, string key, string uploadId, int partNumber, ReadOnlyMemory<byte> data,
        CancellationToken cancel) => Call(async () =>
    {
        using var body = new ReadOnlyMemoryStream(data);
        var response = await _client.UploadPartAsync(new UploadPartRequest
        {
            BucketName = bucket, Key = key, UploadId = uploadId, PartNumber = partNumber, InputStream = body, PartSize = data.Length,
            DisablePayloadSigning = _https,
        }, cancel).ConfigureAwait(false);
        return response.ETag;
    }, bucket, key);

    public Task CompleteUploadAsync(string bucket, string key, string uploadId, IReadOnlyList<(int Number, string ETag)> parts,
        CancellationToken cancel) => Call(async () =>
    {
        var request = new CompleteMultipartUploadRequest { BucketName = bucket, Key = key, UploadId = uploadId };
        request.PartETags = parts.Select(p => new PartETag(p.Number, p.ETag)).ToList();
        await _client.CompleteMultipartUploadAsync(request, cancel).ConfigureAwait(false);
        return true;
    }, bucket, key);

    public async Task AbortUploadAsync(string bucket, string key, string uploadId, CancellationToken cancel)
    {
        try
        {
            await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = bucket, Key = key, UploadId = uploadId }, cancel)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or IOException or OperationCanceledException) { }
    }

    public Task<ObjectStat?> StatAsync(string bucket, string key, CancellationToken cancel) => Call<ObjectStat?>(async () =>
    {
        GetObjectMetadataResponse meta;
        try
        {
            meta = await _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = bucket, Key = key }, cancel)
                .ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        // The answer decides every later range and pins every read: a store that leaves either out is refused here.
        long length = meta.ContentLength; // the SDK's stand-in for an absent or unparsable header is negative
        if (length < 0)
            throw new ObjectStoreException($"s3://{bucket}/{key}: the store gave no valid length for the object ({meta.ContentLength})",
                unreachable: false, transient: false);
        if (string.IsNullOrEmpty(meta.ETag))
            throw new ObjectStoreException($"s3://{bucket}/{key}: the store gave no ETag for the object (reads could not be pinned to one version)",
                unreachable: false, transient: false);
        return new ObjectStat(length, meta.ETag);
    }, bucket, key);

    public Task ReadAsync(string bucket, string key, long offset, Memory<byte> destination, string? etag, CancellationToken cancel) => Call(async () =>
    {
        if (destination.Length == 0) return true;
        GetObjectResponse response;
        try
        {
            response = await _client.GetObjectAsync(new GetObjectRequest
            {
                BucketName = bucket, Key = key, ByteRange = new ByteRange(offset, offset + destination.Length - 1), EtagToMatch = etag,
            }, cancel).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (etag is not null && e.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            throw Changed(bucket, key, etag, e);
        }
        using (response)
        {
            // If-Match should make this impossible; a store that ignores it must still not hand us another version.
            if (etag is not null && !string.IsNullOrEmpty(response.ETag) && response.ETag != etag) throw Changed(bucket, key, etag, null);
            if (response.ContentLength != destination.Length)
                throw new ObjectStoreException($"s3://{bucket}/{key}: asked for {destination.Length} bytes at {offset}, the store sent {response.ContentLength}",
                    unreachable: false, transient: false);
            await response.ResponseStream.ReadExactlyAsync(destination, cancel).ConfigureAwait(false);
        }
        return true;
    }, bucket, key);

    private static ObjectStoreException Changed(string bucket, string key, string etag, Exception? inner) =>
        new($"s3://{bucket}/{key}: the object changed during the restore (it is no longer the version {etag} that was opened)",
            unreachable: false, transient: false, inner);

    public Task<IReadOnlyList<string>> ListAsync(string bucket, string prefix, int limit, CancellationToken cancel) => Call<IReadOnlyList<string>>(async () =>
    {
        var keys = new List<string>();
        string? token = null;
        do
        {
            var page = await _client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = bucket, Prefix = prefix, ContinuationToken = token, MaxKeys = Math.Min(1000, limit - keys.Count),
            }, cancel).ConfigureAwait(false);
            foreach (var o in page.S3Objects ?? []) if (keys.Count < limit) keys.Add(o.Key);
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (token is not null && keys.Count < limit);
        return keys;
    }, bucket, prefix);

    public Task PutAsync(string bucket, string key, ReadOnlyMemory<byte> data, CancellationToken cancel) => Call(async () =>
    {
        using var body = new ReadOnlyMemoryStream(data);
        await _client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, InputStream = body, DisablePayloadSigning = _https }, cancel)
            .ConfigureAwait(false);
        return true;
    }, bucket, key);

    public Task CreateBucketAsync(string bucket, CancellationToken cancel) => Call(async () =>
    {
        await _client.PutBucketAsync(new PutBucketRequest { BucketName = bucket }, cancel).ConfigureAwait(false);
        return true;
    }, bucket, "");

    /// <summary>Runs one SDK call and turns its failures into <see cref="ObjectStoreException"/> (never naming credentials).</summary>
    private static async Task<T> Call<T>(Func<Task<T>> call, string bucket, string key)
    {
        string where = $"s3://{bucket}/{key}";
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode != 0)
        {
            int status = (int)e.StatusCode;
            throw new ObjectStoreException($"{where}: the store answered {status} {e.ErrorCode}", unreachable: false,
                transient: status >= 500 || status == 429, e);
        }
        catch (Exception e) when (e is not ObjectStoreException && IsNetworkFailure(e))
        {
            throw new ObjectStoreException($"{where}: the store cannot be reached ({Innermost(e).Message})", unreachable: true, transient: true, e);
        }
    }

    private static bool IsNetworkFailure(Exception e) =>
        e is HttpRequestException or SocketException or IOException or TimeoutException
        || e is OperationCanceledException && e.InnerException is TimeoutException
        || e is AmazonClientException && e.InnerException is { } inner && IsNetworkFailure(inner);

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is { } inner) e = inner;
        return e;
    }

    public void Dispose() => _client.Dispose();

    /// <summary>HttpClient whose sockets have Nagle off and a bounded connect time.</summary>
    private sealed class NoDelayHttpClientFactory(TimeSpan connectTimeout) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig)
        {
            var handler = new SocketsHttpHandler
            {
                ConnectTimeout = connectTimeout,
                MaxConnectionsPerServer = 64,
                PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
                ConnectCallback = async (context, cancel) =>
                {
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try
                    {
                        await socket.ConnectAsync(context.DnsEndPoint, cancel).ConfigureAwait(false);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        }

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => true;
        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => false;
        public override string GetConfigUniqueString(IClientConfig clientConfig) => "minivmm-nodelay";
    }

    /// <summary>A read-only seekable stream over memory the caller keeps alive for the call (no copy).</summary>
    private sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> data) : Stream
    {
        private int _position;
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _position; set => _position = (int)Math.Clamp(value, 0, data.Length); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, data.Length - _position);
            data.Span.Slice(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancel = default) => new(Read(buffer.Span));
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancel) => Task.FromResult(Read(buffer, offset, count));
        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch { SeekOrigin.Begin => offset, SeekOrigin.Current => _position + offset, _ => data.Length + offset };
            return _position;
        }
        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
