namespace MiniVmm.Snapshot.Format;

/// <summary>
/// Where an incremental link's parents are looked for: local directories, or the neighbours of an object in a store.
/// Candidates are found by snapshot id; the chain then checks each one's content (trailer checksum) itself.
/// </summary>
public interface IParentLocator
{
    /// <summary>What was searched, for messages ("'/a', '/b'", "s3://bucket/prefix").</summary>
    string Where { get; }

    /// <summary>Appended to "parent missing" messages: how to point at the parent (may be empty).</summary>
    string Hint { get; }

    /// <summary>The candidates whose header names <paramref name="snapshotId"/> (none: missing).</summary>
    IReadOnlyList<string> CandidatesFor(Guid snapshotId);

    /// <summary>Opens and validates a candidate.</summary>
    /// <exception cref="SnapshotFormatException">It is not a usable snapshot (it cannot be read, or is damaged).</exception>
    /// <remarks>Any other exception (a store that cannot be reached) ends the search: it says nothing about the candidate.</remarks>
    SnapshotFile Open(string candidate);
}
