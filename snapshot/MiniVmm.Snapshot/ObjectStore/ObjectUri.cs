namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>An <c>s3://BUCKET/KEY</c> location. Bucket names follow S3's rules; the key is kept as written.</summary>
public sealed record ObjectUri(string Bucket, string Key)
{
    public const string Scheme = "s3://";

    public static bool IsObjectUri(string text) => text.StartsWith(Scheme, StringComparison.Ordinal);

    /// <summary>Parses <c>s3://BUCKET/KEY</c>; a missing bucket or key, or a bad bucket name, is an <see cref="ArgumentException"/>.</summary>
    public static ObjectUri Parse(string text)
    {
        if (!IsObjectUri(text)) throw new ArgumentException($"'{text}' is not an s3://BUCKET/KEY location");
        string rest = text[Scheme.Length..];
        int slash = rest.IndexOf('/');
        if (slash <= 0 || slash == rest.Length - 1)
            throw new ArgumentException($"'{text}': an object location is s3://BUCKET/KEY (bucket and key both needed)");
        string bucket = rest[..slash], key = rest[(slash + 1)..];
        if (bucket.Length is < 3 or > 63 || !bucket.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '.')
            || !char.IsAsciiLetterOrDigit(bucket[0]) || !char.IsAsciiLetterOrDigit(bucket[^1]))
            throw new ArgumentException($"'{bucket}' is not a valid bucket name (3-63 of a-z, 0-9, '-', '.')");
        if (key.Length > 1024) throw new ArgumentException("an object key is at most 1024 bytes");
        return new ObjectUri(bucket, key);
    }

    public override string ToString() => Scheme + Bucket + "/" + Key;
}
