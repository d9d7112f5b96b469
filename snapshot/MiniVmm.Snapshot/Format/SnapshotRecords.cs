namespace MiniVmm.Snapshot.Format;

/// <summary>One guest RAM region. <paramref name="Size"/> is a non-zero multiple of <see cref="SnapshotFormat.PageSize"/>.</summary>
public sealed record SnapshotRegion(ulong GuestAddress, ulong Size)
{
    public long PageCount => (long)(Size >> SnapshotFormat.PageShift);
}

/// <summary>What the header describes besides the layout. <c>VmConfig</c> is opaque to the format (the VMM passes JSON).</summary>
public sealed record SnapshotHeaderInfo(string Engine, string VmConfig, string HostCpuModel, IReadOnlyList<SnapshotRegion> Regions)
{
    /// <summary>
    /// Set for an incremental link (format 2.1+): the snapshot it builds on. Its present pages are the pages written
    /// since that parent (zero pages included); every other page is the parent's.
    /// </summary>
    public SnapshotParent? Parent { get; init; }
}

/// <summary>
/// A parent named by content, never by path: its snapshot id plus the checksum of its trailer (which covers every page
/// checksum and the state checksum), so a file replaced under the same name, or another snapshot given the same id,
/// does not match.
/// </summary>
public sealed record SnapshotParent(Guid SnapshotId, ulong TrailerChecksum)
{
    public override string ToString() => $"{SnapshotId} (trailer checksum {TrailerChecksum:x16})";
}

/// <summary>One versioned state record, keyed by component id (e.g. "vcpu0", "vm", "serial0").</summary>
public sealed record StateSection(string Id, ushort Version, byte[] Data);

/// <summary>
/// Result of <see cref="SnapshotFile.Verify"/>. <see cref="Errors"/> holds at most the first 100 messages;
/// <see cref="BytesRead"/> excludes holes, which are skipped (lseek SEEK_DATA).
/// </summary>
public sealed record VerifyResult(long PresentPagesChecked, long AbsentPagesChecked, long BytesRead, long ErrorCount, IReadOnlyList<string> Errors)
{
    public bool IsValid => ErrorCount == 0;
}

/// <summary>A snapshot file or stream is malformed, truncated, corrupted, incomplete or of an unsupported version.</summary>
public sealed class SnapshotFormatException : Exception
{
    public SnapshotFormatException(string message) : base(message) { }
    public SnapshotFormatException(string message, Exception? innerException) : base(message, innerException) { }
}
