namespace MiniVmm.Snapshot.Format;

/// <summary>One guest RAM region. <paramref name="Size"/> is a non-zero multiple of <see cref="SnapshotFormat.PageSize"/>.</summary>
public sealed record SnapshotRegion(ulong GuestAddress, ulong Size)
{
    public long PageCount => (long)(Size >> SnapshotFormat.PageShift);
}

/// <summary>What the header describes besides the layout. <c>VmConfig</c> is opaque to the format (the VMM passes JSON).</summary>
public sealed record SnapshotHeaderInfo(string Engine, string VmConfig, string HostCpuModel, IReadOnlyList<SnapshotRegion> Regions);

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
