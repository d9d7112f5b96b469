using System.CommandLine;
using MiniVmm.Machine.Snapshots;

namespace MiniVmm.Cli;

/// <summary>
/// `--s3-profile` and `--s3-endpoint` of `run` and `restore`: which AWS profile and which store an s3:// location uses
/// (for --snapshot-to, `restore s3://` and the monitor's `migrate s3://` alike). The keys are never options: they would
/// show in ps; they come from the environment or the profile's files.
/// </summary>
internal sealed class S3CliOptions
{
    public Option<string?> Profile { get; } = new("--s3-profile")
    {
        Description = "s3://: take credentials, endpoint_url and region from this profile of ~/.aws/credentials and ~/.aws/config (overrides AWS_PROFILE and AWS_ACCESS_KEY_ID; default: the environment, else profile 'default')",
        HelpName = "NAME",
    };
    public Option<string?> Endpoint { get; } = new("--s3-endpoint")
    {
        Description = "s3://: the store's http(s) URL (overrides AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL and the profile's endpoint_url)",
        HelpName = "URL",
    };

    public IEnumerable<Option> All => [Profile, Endpoint];

    /// <summary>
    /// The choices, checked: <paramref name="usable"/> says whether anything of this command can reach a store (an s3://
    /// location or a monitor that may be told one); options that nothing would use are an error, as a typo would be.
    /// </summary>
    public bool TryGet(ParseResult parse, bool usable, out S3Access access, out string? error)
    {
        access = S3Access.Default;
        error = null;
        string? profile = parse.GetValue(Profile), endpoint = parse.GetValue(Endpoint);
        if (profile is null && endpoint is null) return true;
        if (profile is not null && (profile.Trim().Length == 0 || profile != profile.Trim() || profile.Contains(']')))
        { error = $"--s3-profile: '{profile}' is not a profile name"; return false; }
        if (endpoint is not null && (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0))
        { error = $"--s3-endpoint: '{endpoint}' is not an http(s) URL"; return false; }
        if (!usable)
        {
            error = $"{(profile is not null ? "--s3-profile" : "--s3-endpoint")} applies to s3:// locations: give --snapshot-to s3://BUCKET/KEY, restore s3://BUCKET/KEY, or --qmp (migrate s3://...)";
            return false;
        }
        access = new S3Access(profile, endpoint);
        return true;
    }
}
