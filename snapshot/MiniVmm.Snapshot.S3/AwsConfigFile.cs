namespace MiniVmm.Snapshot.S3;

/// <summary>
/// One of the AWS CLI's shared files (~/.aws/credentials or ~/.aws/config), read strictly: sections <c>[NAME]</c>
/// (credentials) or <c>[default]</c> / <c>[profile NAME]</c> (config; other sections such as <c>[sso-session X]</c>
/// are checked and skipped), <c>key = value</c> lines, <c>#</c> and <c>;</c> comment lines, and a key with an empty
/// value followed by indented <c>key = value</c> lines (a sub-section: <c>s3 =</c> / <c>  endpoint_url = ...</c>,
/// stored as <c>s3.endpoint_url</c>). Anything else is an <see cref="ArgumentException"/> naming the file and line —
/// never the line's text, which may hold a secret. Our own reader rather than the SDK's profile store: strict errors,
/// testable with injected files, and no reflection under NativeAOT.
/// </summary>
internal sealed class AwsConfigFile
{
    public static readonly string[] CredentialKeys = ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"];
    public static readonly string[] UnsupportedCredentialKeys =
        ["role_arn", "source_profile", "credential_process", "credential_source", "sso_session", "sso_start_url", "web_identity_token_file"];

    private readonly Dictionary<string, AwsProfile> _profiles;

    private AwsConfigFile(string path, string kind, bool exists, Dictionary<string, AwsProfile> profiles)
    {
        Path = path;
        Kind = kind;
        Exists = exists;
        _profiles = profiles;
    }

    public string Path { get; }
    public string Kind { get; }
    public bool Exists { get; }

    public string Describe() => Exists ? $"{Kind} file {Path}" : $"{Kind} file {Path}, which does not exist";

    public AwsProfile? Profile(string name) => _profiles.GetValueOrDefault(name);

    /// <summary>
    /// The file <paramref name="variable"/> names (an error when it does not exist), else ~/.aws/<paramref name="defaultName"/>
    /// (none there: an empty file).
    /// </summary>
    public static AwsConfigFile Load(S3ConfigSources sources, string variable, string defaultName, bool isConfig)
    {
        string kind = isConfig ? "config" : "credentials";
        string? named = sources.GetEnv(variable) is { Length: > 0 } v ? v : null;
        string path;
        if (named is not null) path = Expand(named, sources.Home);
        else if (sources.Home is { Length: > 0 } home) path = System.IO.Path.Combine(home, ".aws", defaultName);
        else return new AwsConfigFile("~/.aws/" + defaultName, kind, exists: false, []);
        string? text;
        try { text = sources.ReadFile(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"the {kind} file {path} cannot be read: {e.Message}", e);
        }
        if (text is null)
        {
            if (named is not null) throw new ArgumentException($"{variable} names the {kind} file {path}, which does not exist");
            return new AwsConfigFile(path, kind, exists: false, []);
        }
        return new AwsConfigFile(path, kind, exists: true, Parse(path, kind, text, isConfig));
    }

    private static string Expand(string path, string? home) =>
        home is { Length: > 0 } && (path == "~" || path.StartsWith("~/", StringComparison.Ordinal)) ? home + path[1..] : path;

    private static Dictionary<string, AwsProfile> Parse(string path, string kind, string text, bool isConfig)
    {
        var profiles = new Dictionary<string, AwsProfile>(StringComparer.Ordinal);
        var seenSections = new HashSet<string>(StringComparer.Ordinal);
        Dictionary<string, string>? section = null; // null before the first header
        string? sectionName = null;
        string? openKey = null; // a key with an empty value: indented lines below it are its sub-section
        bool openKeyHasValue = false;
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string raw = lines[i].TrimEnd('\r');
            string line = raw.Trim();
            int number = i + 1;
            ArgumentException Bad(string what) => new($"the {kind} file {path}, line {number}: {what}");
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            bool indented = raw[0] is ' ' or '\t';
            if (!indented && line[0] == '[')
            {
                if (line[^1] != ']') throw Bad("a section header must end with ']'");
                string header = line[1..^1].Trim();
                if (header.Length == 0) throw Bad("empty section name");
                if (!seenSections.Add(header)) throw Bad($"section [{header}] appears a second time");
                sectionName = ProfileNameOf(header, isConfig);
                section = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                if (sectionName is not null)
                {
                    if (profiles.ContainsKey(sectionName)) throw Bad($"profile '{sectionName}' appears a second time");
                    profiles[sectionName] = new AwsProfile(sectionName, path, section);
                }
                openKey = null;
                continue;
            }
            if (indented && section is not null && (openKey is null || openKeyHasValue))
                throw Bad("an indented line continues a value, which MiniVmm does not support (only a sub-section under a key with an empty value such as 's3 =')");
            int eq = line.IndexOf('=');
            if (eq < 0) throw Bad("not a 'key = value' line, a [section] header or a comment");
            string key = line[..eq].Trim();
            string value = line[(eq + 1)..].Trim();
            if (key.Length == 0) throw Bad("a value without a key");
            if (section is null) throw Bad("a key before the first [section] header");
            if (indented) key = openKey + "." + key;
            else
            {
                openKey = key;
                openKeyHasValue = value.Length > 0;
            }
            if (!section.TryAdd(key, value)) throw Bad($"key '{key}' appears a second time in [{sectionName ?? "section"}]");
        }
        return profiles;
    }

    /// <summary>The profile a header names, or null for a section that is not one (config: sso-session, services, ...).</summary>
    private static string? ProfileNameOf(string header, bool isConfig)
    {
        if (!isConfig) return header;
        if (header == "default") return header;
        if (header.StartsWith("profile", StringComparison.Ordinal) && header.Length > 7 && header[7] is ' ' or '\t')
            return header[8..].Trim() is { Length: > 0 } name ? name : null;
        return null;
    }
}

/// <summary>One profile's keys (sub-section keys as <c>s3.endpoint_url</c>).</summary>
internal sealed class AwsProfile(string name, string path, IReadOnlyDictionary<string, string> values)
{
    public bool Has(string key) => values.ContainsKey(key);
    public bool HasAny(IEnumerable<string> keys) => keys.Any(values.ContainsKey);
    public string? FirstOf(IEnumerable<string> keys) => keys.FirstOrDefault(values.ContainsKey);

    /// <summary>The key's value; null when the profile lacks it; an <see cref="ArgumentException"/> when it is empty.</summary>
    public string? Get(string key) => !values.TryGetValue(key, out string? v) ? null
        : v.Length > 0 ? v
        : throw new ArgumentException($"profile '{name}' in {path}: {key} has no value");
}
