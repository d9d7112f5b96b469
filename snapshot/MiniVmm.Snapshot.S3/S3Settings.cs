namespace MiniVmm.Snapshot.S3;

/// <summary>Where the store is and who we are to it. <see cref="ToString"/> leaves the secret out.</summary>
public sealed record S3Settings(string Endpoint, string AccessKey, string SecretKey, string Region)
{
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// From the environment the AWS tools use: AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION / AWS_DEFAULT_REGION (default us-east-1). A missing value is an
    /// <see cref="ArgumentException"/> naming the variable.
    /// </summary>
    public static S3Settings FromEnvironment(Func<string, string?>? getenv = null)
    {
        getenv ??= Environment.GetEnvironmentVariable;
        string Need(string name) => getenv(name) is { Length: > 0 } v ? v
            : throw new ArgumentException($"an s3:// location needs {name} in the environment");
        string endpoint = getenv("AWS_ENDPOINT_URL_S3") is { Length: > 0 } s3 ? s3 : Need("AWS_ENDPOINT_URL");
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"AWS_ENDPOINT_URL '{endpoint}' is not an http(s) URL");
        string region = getenv("AWS_REGION") is { Length: > 0 } r ? r : getenv("AWS_DEFAULT_REGION") is { Length: > 0 } d ? d : "us-east-1";
        return new S3Settings(endpoint, Need("AWS_ACCESS_KEY_ID"), Need("AWS_SECRET_ACCESS_KEY"), region);
    }

    public override string ToString() => $"S3Settings {{ Endpoint = {Endpoint}, Region = {Region} }}";
}
