namespace MiniVmm.Snapshot.Format;

/// <summary>Constants and limits of the snapshot format (file and stream form). See the README's "Snapshot file" table.</summary>
public static class SnapshotFormat
{
    public const int PageSize = 4096;
    public const int PageShift = 12;

    /// <summary>
    /// Readers accept only this major version, and minor versions up to <see cref="MinorVersion"/> (the policy is in
    /// docs/snapshot-format.md). 2.0: a snapshot id in header, state and trailer binds the three together. 2.1: the
    /// header names the parent of an incremental link. 2.2: the header's VM configuration has kebab-case keys (its
    /// version 2) and the state may hold drive records (driveN sections naming the drive copies).
    /// </summary>
    public const ushort MajorVersion = 2;
    public const ushort MinorVersion = 2;

    /// <summary>The first minor version whose header carries the parent reference.</summary>
    internal const ushort ParentMinorVersion = 1;

    /// <summary>Bytes of the snapshot id (a random UUID) in the header, the state and the trailer.</summary>
    public const int SnapshotIdSize = 16;

    /// <summary>Bytes reserved for the header at the start of the file (the header itself is usually far smaller).</summary>
    public const int HeaderAreaSize = 64 * 1024;

    /// <summary>Each region's page area starts at a multiple of this (2 MiB: huge-page friendly for mmap restore).</summary>
    public const long RegionAlignment = 2 * 1024 * 1024;

    /// <summary>Cap on the encoded state (all sections together).</summary>
    public const int MaxStateBytes = 64 * 1024 * 1024;

    public const int MaxRegions = 64;
    public const long MaxGuestMemoryBytes = 1L << 40;
    public const int MaxEngineBytes = 256;
    public const int MaxHostCpuModelBytes = 1024;
    public const int MaxVmConfigBytes = 48 * 1024;
    public const int MaxSectionIdBytes = 256;
    public const int MaxSections = 65536;

    /// <summary>A file being written is named PATH + this until it is complete and renamed into place.</summary>
    public const string PartialSuffix = ".partial";

    public static string CurrentVersion => $"{MajorVersion}.{MinorVersion}";

    internal static ReadOnlySpan<byte> FileMagic => "MINIVMMS"u8;
    internal static ReadOnlySpan<byte> StreamMagic => "MVSTREAM"u8;
    internal static ReadOnlySpan<byte> TrailerMagic => "MVTRAILR"u8;
    internal static ReadOnlySpan<byte> EndMagic => "MVSNDONE"u8;

    /// <summary>Completion marker at the very end of the file: <see cref="EndMagic"/> + u64 file length.</summary>
    internal const int EndMarkerSize = 16;

    /// <summary>The id's 16 bytes in RFC 4122 order, so a hex dump reads like the printed UUID.</summary>
    internal static void WriteId(Guid id, Span<byte> destination)
    {
        if (!id.TryWriteBytes(destination[..SnapshotIdSize], bigEndian: true, out _))
            throw new ArgumentException("no room for the snapshot id", nameof(destination));
    }

    internal static Guid ReadId(ReadOnlySpan<byte> source) => new(source[..SnapshotIdSize], bigEndian: true);

    /// <summary>The id a new snapshot gets: <paramref name="given"/> or a random one; never the all-zero id, which
    /// every reader refuses (two nil-id files could be spliced without the binding noticing).</summary>
    internal static Guid IdForNewSnapshot(Guid? given) => given switch
    {
        null => Guid.NewGuid(),
        { } id when id == Guid.Empty => throw new ArgumentException("a snapshot id must not be the all-zero UUID", nameof(given)),
        { } id => id,
    };

    internal static long AlignUp(long value, long alignment) => (value + alignment - 1) & ~(alignment - 1);
}
