namespace MiniVmm.Snapshot.S3;

/// <summary>
/// Where the store is and who we are to it. <see cref="ToString"/> leaves the secret and the session token out; it
/// names where the credentials came from (<see cref="CredentialSource"/>).
/// </summary>
public sealed record S3Settings(string Endpoint, string AccessKey, string SecretKey, string Region)
{
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Temporary credentials' token (AWS_SESSION_TOKEN, aws_session_token), or null for long-term keys.</summary>
    public string? SessionToken { get; init; }
    /// <summary>"environment" or "profile 'NAME' in FILE": for messages, never a secret.</summary>
    public string CredentialSource { get; init; } = "given";

    /// <summary>The profile used when neither <c>--s3-profile</c> nor AWS_PROFILE names one.</summary>
    public const string DefaultProfile = "default";

    /// <summary>
    /// <see cref="Resolve"/> with no command-line overrides, from this process's environment and files (or from
    /// <paramref name="getenv"/>, whose HOME then says where ~/.aws is).
    /// </summary>
    public static S3Settings FromEnvironment(Func<string, string?>? getenv = null) =>
        Resolve(new S3Overrides(), getenv is null ? S3ConfigSources.Process : S3ConfigSources.Process with { GetEnv = getenv, Home = getenv("HOME") });

    /// <summary>
    /// The settings as the AWS CLI resolves them (see README "Credentials and endpoint"):
    /// <list type="bullet">
    /// <item>credentials: with <see cref="S3Overrides.Profile"/> (<c>--s3-profile</c>) that profile's keys; else
    /// AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); else the profile AWS_PROFILE names (default
    /// "default"): aws_access_key_id, aws_secret_access_key, aws_session_token from the shared credentials file
    /// (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials), else from that profile in the config file;</item>
    /// <item>endpoint: <see cref="S3Overrides.Endpoint"/> (<c>--s3-endpoint</c>), AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
    /// the profile's <c>s3 =</c> sub-section endpoint_url, the profile's endpoint_url (config file: AWS_CONFIG_FILE,
    /// default ~/.aws/config, section <c>[profile NAME]</c> or <c>[default]</c>);</item>
    /// <item>region: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, us-east-1.</item>
    /// </list>
    /// Every problem — a variable or key without its partner or value, a file named by a variable that is missing, an
    /// unreadable or malformed file, a named profile that is in neither file, no credentials or no endpoint at all —
    /// is an <see cref="ArgumentException"/> naming the variable, file and profile (never a value).
    /// </summary>
    public static S3Settings Resolve(S3Overrides overrides, S3ConfigSources? sources = null)
    {
        sources ??= S3ConfigSources.Process;
        string? Env(string name) => sources.GetEnv(name) is { Length: > 0 } v ? v : null;

        bool explicitProfile = overrides.Profile is not null || Env("AWS_PROFILE") is not null;
        string profile = overrides.Profile ?? Env("AWS_PROFILE") ?? DefaultProfile;
        if (profile.Trim().Length == 0 || profile.Contains(']') || profile != profile.Trim())
            throw new ArgumentException($"'{profile}' is not a profile name");

        var credentialsFile = AwsConfigFile.Load(sources, "AWS_SHARED_CREDENTIALS_FILE", "credentials", isConfig: false);
        var configFile = AwsConfigFile.Load(sources, "AWS_CONFIG_FILE", "config", isConfig: true);
        var fromCredentials = credentialsFile.Profile(profile);
        var fromConfig = configFile.Profile(profile);
        string where = $"profile '{profile}' ({credentialsFile.Describe()}, {configFile.Describe()})";
        if (explicitProfile && fromCredentials is null && fromConfig is null)
            throw new ArgumentException($"the {where} does not exist: it is in neither file");

        // Credentials.
        string? envKey = Env("AWS_ACCESS_KEY_ID"), envSecret = Env("AWS_SECRET_ACCESS_KEY");
        if (overrides.Profile is null && envKey is not null && envSecret is null)
            throw new ArgumentException("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        if (overrides.Profile is null && envKey is null && envSecret is not null)
            throw new ArgumentException("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
        string accessKey, secretKey, source;
        string? token;
        if (envKey is not null && overrides.Profile is null)
        {
            (accessKey, secretKey, token, source) = (envKey, envSecret!, Env("AWS_SESSION_TOKEN"), "environment");
        }
        else
        {
            var (keys, file) = fromCredentials is { } c && c.HasAny(AwsConfigFile.CredentialKeys) ? (c, credentialsFile)
                : fromConfig is { } g && g.HasAny(AwsConfigFile.CredentialKeys) ? (g, configFile)
                : (null, null);
            if (keys is null)
            {
                string unsupported = (fromCredentials?.FirstOf(AwsConfigFile.UnsupportedCredentialKeys) ?? fromConfig?.FirstOf(AwsConfigFile.UnsupportedCredentialKeys)) is { } u
                    ? $"; it uses {u}, which MiniVmm does not support (give it aws_access_key_id and aws_secret_access_key)" : "";
                throw new ArgumentException(fromCredentials is null && fromConfig is null
                    ? $"an s3:// location needs credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and there is no {where}"
                    : $"the {where} has no aws_access_key_id and aws_secret_access_key{unsupported}");
            }
            string here = $"profile '{profile}' in {file!.Path}";
            accessKey = keys.Get("aws_access_key_id") ?? throw new ArgumentException(
                keys.Has("aws_secret_access_key") ? $"{here} has aws_secret_access_key but no aws_access_key_id" : $"{here} has no aws_access_key_id");
            secretKey = keys.Get("aws_secret_access_key") ?? throw new ArgumentException($"{here} has aws_access_key_id but no aws_secret_access_key");
            token = keys.Get("aws_session_token");
            source = here;
        }

        // Endpoint.
        string? endpoint; string endpointFrom;
        if (overrides.Endpoint is not null) (endpoint, endpointFrom) = (overrides.Endpoint, "--s3-endpoint");
        else if (Env("AWS_ENDPOINT_URL_S3") is { } s3) (endpoint, endpointFrom) = (s3, "AWS_ENDPOINT_URL_S3");
        else if (Env("AWS_ENDPOINT_URL") is { } any) (endpoint, endpointFrom) = (any, "AWS_ENDPOINT_URL");
        else if (fromConfig?.Get("s3.endpoint_url") is { } sub) (endpoint, endpointFrom) = (sub, $"s3 endpoint_url of profile '{profile}' in {configFile.Path}");
        else if (fromConfig?.Get("endpoint_url") is { } url) (endpoint, endpointFrom) = (url, $"endpoint_url of profile '{profile}' in {configFile.Path}");
        else throw new ArgumentException(
            $"an s3:// location needs an endpoint: --s3-endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or endpoint_url in the {where}");
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0)
            throw new ArgumentException($"{endpointFrom}: '{endpoint}' is not an http(s) URL");

        string region = Env("AWS_REGION") ?? Env("AWS_DEFAULT_REGION") ?? fromConfig?.Get("region") ?? "us-east-1";
        return new S3Settings(endpoint, accessKey, secretKey, region) { SessionToken = token, CredentialSource = source };
    }

    public override string ToString() => $"S3Settings {{ Endpoint = {Endpoint}, Region = {Region}, Credentials = {CredentialSource} }}";
}

/// <summary>What the command line chose: <c>--s3-profile</c> and <c>--s3-endpoint</c> (null: not given).</summary>
public sealed record S3Overrides(string? Profile = null, string? Endpoint = null);

/// <summary>
/// Where <see cref="S3Settings.Resolve"/> looks: the environment, the files (<see cref="ReadFile"/>: the text, null when
/// the file does not exist; an IOException or UnauthorizedAccessException when it cannot be read) and the home
/// directory the default paths (~/.aws/...) are under.
/// </summary>
public sealed record S3ConfigSources(Func<string, string?> GetEnv, Func<string, string?> ReadFile, string? Home)
{
    public static S3ConfigSources Process { get; } = new(Environment.GetEnvironmentVariable, ReadIfExists,
        Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } home ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    private static string? ReadIfExists(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
    }
}
