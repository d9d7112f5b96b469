using MiniVmm.Snapshot.S3;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// The command line's say in how an s3:// location is reached: <c>--s3-profile</c> and <c>--s3-endpoint</c> (null: not
/// given). Everything else — the keys above all, which are never options — comes from the environment and the AWS
/// shared files (<see cref="S3Settings.Resolve"/>).
/// </summary>
public sealed record S3Access(string? Profile = null, string? Endpoint = null)
{
    public static readonly S3Access Default = new();

    internal S3Settings Resolve() => S3Settings.Resolve(new S3Overrides(Profile, Endpoint));

    /// <summary>Null when a store could be reached with these choices as things stand, else why not (no secret in it).</summary>
    public string? Problem()
    {
        try { Resolve(); return null; }
        catch (ArgumentException e) { return e.Message; }
    }
}
