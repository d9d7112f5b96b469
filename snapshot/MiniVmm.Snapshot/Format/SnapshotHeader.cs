using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// The decoded header. File form: the layout fields say where everything is. Stream form: they are all zero.
/// </summary>
internal sealed record SnapshotHeader(
    bool IsStream,
    ushort Major,
    ushort Minor,
    uint Flags,
    long CreatedUnixMs,
    Guid SnapshotId,
    SnapshotHeaderInfo Info,
    long[] RegionOffsets,
    long StateOffset,
    long StateLength,
    long TrailerOffset,
    long TrailerLength,
    long FileLength)
{
    public const uint FlagComplete = 1;
    private const uint KnownFlags = FlagComplete;

    /// <summary>magic, major, minor, header length: the part every version keeps.</summary>
    public const int PrefixSize = 16;

    /// <summary>Everything before the strings.</summary>
    public const int FixedSize = 80;

    /// <summary>Parent id and parent trailer checksum (2.1+).</summary>
    private const int ParentFieldSize = SnapshotFormat.SnapshotIdSize + 8;

    public bool IsComplete => (Flags & FlagComplete) != 0;
    public string Version => $"{Major}.{Minor}";

    // Layout (little-endian):
    //   0 magic[8]  8 u16 major  10 u16 minor  12 u32 headerLength (incl. the final XXH3)  16 u32 flags  20 u32 pageSize
    //  24 i64 created (Unix ms)  32 u64 stateOffset  40 u64 stateLength  48 u64 trailerOffset  56 u64 trailerLength
    //  64 u64 fileLength  72 u32 regionCount  76 u32 reserved
    //  80 u16 len + engine UTF-8, u16 len + host CPU model UTF-8, u32 len + VM config UTF-8
    //     u8[16] snapshot id (the same in the state and the trailer)
    //     2.1+: u8[16] parent snapshot id (all zero: no parent), u64 parent trailer checksum (0 without a parent)
    //     regionCount x (u64 guestAddress, u64 size, u64 fileOffset)
    //     u64 XXH3-64 of all preceding header bytes
    public byte[] Encode()
    {
        var engine = Encoding.UTF8.GetBytes(Info.Engine);
        var cpu = Encoding.UTF8.GetBytes(Info.HostCpuModel);
        var config = Encoding.UTF8.GetBytes(Info.VmConfig);
        bool hasParentField = Minor >= SnapshotFormat.ParentMinorVersion;
        if (Info.Parent is not null && !hasParentField)
            throw new ArgumentException($"format {Version} cannot name a parent snapshot");
        int length = FixedSize + 2 + engine.Length + 2 + cpu.Length + 4 + config.Length + SnapshotFormat.SnapshotIdSize
                     + (hasParentField ? ParentFieldSize : 0) + Info.Regions.Count * 24 + 8;
        var b = new byte[length];
        var s = b.AsSpan();
        (IsStream ? SnapshotFormat.StreamMagic : SnapshotFormat.FileMagic).CopyTo(s);
        BinaryPrimitives.WriteUInt16LittleEndian(s[8..], Major);
        BinaryPrimitives.WriteUInt16LittleEndian(s[10..], Minor);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(s[16..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], SnapshotFormat.PageSize);
        BinaryPrimitives.WriteInt64LittleEndian(s[24..], CreatedUnixMs);
        BinaryPrimitives.WriteInt64LittleEndian(s[32..], StateOffset);
        BinaryPrimitives.WriteInt64LittleEndian(s[40..], StateLength);
        BinaryPrimitives.WriteInt64LittleEndian(s[48..], TrailerOffset);
        BinaryPrimitives.WriteInt64LittleEndian(s[56..], TrailerLength);
        BinaryPrimitives.WriteInt64LittleEndian(s[64..], FileLength);
        BinaryPrimitives.WriteUInt32LittleEndian(s[72..], (uint)Info.Regions.Count);
        int p = FixedSize;
        BinaryPrimitives.WriteUInt16LittleEndian(s[p..], (ushort)engine.Length); p += 2;
        engine.CopyTo(s[p..]); p += engine.Length;
        BinaryPrimitives.WriteUInt16LittleEndian(s[p..], (ushort)cpu.Length); p += 2;
        cpu.CopyTo(s[p..]); p += cpu.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(s[p..], (uint)config.Length); p += 4;
        config.CopyTo(s[p..]); p += config.Length;
        SnapshotFormat.WriteId(SnapshotId, s[p..]); p += SnapshotFormat.SnapshotIdSize;
        if (hasParentField)
        {
            if (Info.Parent is { } parent)
            {
                SnapshotFormat.WriteId(parent.SnapshotId, s[p..]);
                BinaryPrimitives.WriteUInt64LittleEndian(s[(p + SnapshotFormat.SnapshotIdSize)..], parent.TrailerChecksum);
            }
            p += ParentFieldSize;
        }
        for (int i = 0; i < Info.Regions.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[p..], Info.Regions[i].GuestAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(s[(p + 8)..], Info.Regions[i].Size);
            BinaryPrimitives.WriteInt64LittleEndian(s[(p + 16)..], IsStream ? 0 : RegionOffsets[i]);
            p += 24;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(s[p..], XxHash3.HashToUInt64(s[..p]));
        return b;
    }

    /// <summary>Checks magic and version of the first bytes; returns the declared header length.</summary>
    public static int ReadPrefix(ReadOnlySpan<byte> data, bool expectStream, string what)
    {
        if (data.Length < PrefixSize)
            throw new SnapshotFormatException(
                data.Length == 0 ? $"{what} is empty" : $"{what} is too short to be a MiniVmm snapshot ({data.Length} bytes)");
        var magic = data[..8];
        if (!magic.SequenceEqual(expectStream ? SnapshotFormat.StreamMagic : SnapshotFormat.FileMagic))
        {
            if (expectStream && magic.SequenceEqual(SnapshotFormat.FileMagic))
                throw new SnapshotFormatException($"{what} is a snapshot file, not a snapshot stream: it needs no conversion");
            if (!expectStream && magic.SequenceEqual(SnapshotFormat.StreamMagic))
                throw new SnapshotFormatException(
                    $"{what} is a snapshot stream, not a snapshot file: convert it first (minivmm snapshot convert)");
            throw new SnapshotFormatException($"{what} is not a MiniVmm snapshot (bad magic {Convert.ToHexString(magic)})");
        }
        ushort major = BinaryPrimitives.ReadUInt16LittleEndian(data[8..]);
        ushort minor = BinaryPrimitives.ReadUInt16LittleEndian(data[10..]);
        CheckVersion(major, minor, what);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
        if (length < FixedSize + 16 + SnapshotFormat.SnapshotIdSize || length > SnapshotFormat.HeaderAreaSize)
            throw new SnapshotFormatException($"{what} has a corrupt header: header length {length} is out of range");
        return (int)length;
    }

    public static void CheckVersion(ushort major, ushort minor, string what)
    {
        const ushort M = SnapshotFormat.MajorVersion;
        if (major > M)
            throw new SnapshotFormatException($"{what}: snapshot format {major}.{minor} is newer than this MiniVmm ({M}.x)");
        if (major < M)
            throw new SnapshotFormatException($"{what}: snapshot format {major}.{minor} is older than this MiniVmm ({M}.x) can read");
        if (minor > SnapshotFormat.MinorVersion)
            throw new SnapshotFormatException(
                $"{what}: snapshot format {major}.{minor} is newer than this MiniVmm ({M}.{SnapshotFormat.MinorVersion}); upgrade MiniVmm to read it");
    }

    /// <summary>Decodes and validates a whole header (<paramref name="data"/> is exactly the declared header length).</summary>
    public static SnapshotHeader Decode(ReadOnlySpan<byte> data, bool expectStream, string what)
    {
        int length = ReadPrefix(data, expectStream, what);
        if (data.Length != length) throw new ArgumentException("header buffer must be exactly the declared length");
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(data[(length - 8)..]);
        if (XxHash3.HashToUInt64(data[..(length - 8)]) != stored)
            throw new SnapshotFormatException($"{what} has a corrupt header (header checksum mismatch)");

        string ctx = $"{what} header";
        var r = new SpanReader(data[..(length - 8)], ctx);
        r.Bytes(8, "magic");
        ushort major = r.U16("major version");
        ushort minor = r.U16("minor version");
        r.U32("header length");
        uint flags = r.U32("flags");
        if ((flags & ~KnownFlags) != 0) throw new SnapshotFormatException($"{ctx} is corrupt: unknown flags 0x{flags:x}");
        uint pageSize = r.U32("page size");
        if (pageSize != SnapshotFormat.PageSize)
            throw new SnapshotFormatException($"{ctx}: page size {pageSize} is not supported (only {SnapshotFormat.PageSize})");
        long created = (long)r.U64("creation time");
        long stateOffset = r.Length64("state offset");
        long stateLength = r.Length64("state length");
        long trailerOffset = r.Length64("trailer offset");
        long trailerLength = r.Length64("trailer length");
        long fileLength = r.Length64("file length");
        uint regionCount = r.U32("region count");
        if (r.U32("reserved") != 0) throw new SnapshotFormatException($"{ctx} is corrupt: reserved field is not zero");
        if (regionCount > SnapshotFormat.MaxRegions)
            throw new SnapshotFormatException($"{ctx} is corrupt: {regionCount} regions (limit {SnapshotFormat.MaxRegions})");
        string engine = r.String(r.U16("engine length"), SnapshotFormat.MaxEngineBytes, "engine name");
        string cpu = r.String(r.U16("host CPU model length"), SnapshotFormat.MaxHostCpuModelBytes, "host CPU model");
        uint configLength = r.U32("VM config length");
        string config = r.String((int)Math.Min(configLength, int.MaxValue), SnapshotFormat.MaxVmConfigBytes, "VM config");
        var id = SnapshotFormat.ReadId(r.Bytes(SnapshotFormat.SnapshotIdSize, "snapshot id"));
        if (id == Guid.Empty) throw new SnapshotFormatException($"{ctx} is corrupt: its snapshot id is all zero");
        SnapshotParent? parent = null;
        if (minor >= SnapshotFormat.ParentMinorVersion)
        {
            var parentId = SnapshotFormat.ReadId(r.Bytes(SnapshotFormat.SnapshotIdSize, "parent snapshot id"));
            ulong parentTrailer = r.U64("parent trailer checksum");
            if (parentId == Guid.Empty && parentTrailer != 0)
                throw new SnapshotFormatException($"{ctx} is corrupt: a parent trailer checksum without a parent id");
            if (parentId == id) throw new SnapshotFormatException($"{ctx} is corrupt: the snapshot names itself as its parent");
            if (parentId != Guid.Empty) parent = new SnapshotParent(parentId, parentTrailer);
        }
        var regions = new SnapshotRegion[regionCount];
        var offsets = new long[regionCount];
        for (int i = 0; i < regionCount; i++)
        {
            regions[i] = new SnapshotRegion(r.U64($"region {i} guest address"), r.U64($"region {i} size"));
            offsets[i] = r.Length64($"region {i} file offset");
        }
        r.ExpectEnd();
        if (expectStream && parent is not null)
            throw new SnapshotFormatException($"{ctx} is corrupt: a snapshot stream cannot be an incremental link (it names a parent)");
        if (CheckRegions(regions) is { } problem) throw new SnapshotFormatException($"{ctx} is corrupt: {problem}");
        if (expectStream && (flags != 0 || stateOffset != 0 || stateLength != 0 || trailerOffset != 0 || trailerLength != 0
                             || fileLength != 0 || offsets.Any(o => o != 0)))
            throw new SnapshotFormatException($"{ctx} is corrupt: a stream header has file layout fields set");
        return new SnapshotHeader(expectStream, major, minor, flags, created, id, new SnapshotHeaderInfo(engine, config, cpu, regions) { Parent = parent },
            offsets, stateOffset, stateLength, trailerOffset, trailerLength, fileLength);
    }

    /// <summary>Returns why the regions are unusable, or null when they are fine.</summary>
    public static string? CheckRegions(IReadOnlyList<SnapshotRegion> regions)
    {
        if (regions.Count > SnapshotFormat.MaxRegions) return $"{regions.Count} regions (limit {SnapshotFormat.MaxRegions})";
        ulong total = 0;
        for (int i = 0; i < regions.Count; i++)
        {
            var g = regions[i];
            if (g is null) return $"region {i} is null";
            if (g.Size == 0 || g.Size % SnapshotFormat.PageSize != 0)
                return $"region {i} size {g.Size} is not a non-zero multiple of {SnapshotFormat.PageSize}";
            if (g.GuestAddress % SnapshotFormat.PageSize != 0)
                return $"region {i} guest address 0x{g.GuestAddress:x} is not page-aligned";
            if (g.Size > (ulong)SnapshotFormat.MaxGuestMemoryBytes || g.GuestAddress > ulong.MaxValue - g.Size)
                return $"region {i} (0x{g.GuestAddress:x} + 0x{g.Size:x}) is out of range";
            total += g.Size;
            if (total > (ulong)SnapshotFormat.MaxGuestMemoryBytes)
                return $"regions total more than {SnapshotFormat.MaxGuestMemoryBytes >> 30} GiB";
            for (int j = 0; j < i; j++)
            {
                var h = regions[j];
                if (g.GuestAddress < h.GuestAddress + h.Size && h.GuestAddress < g.GuestAddress + g.Size)
                    return $"regions {j} and {i} overlap";
            }
        }
        return null;
    }

    /// <summary>Validates what a writer is given (ArgumentException, not a format error).</summary>
    public static void ValidateInfo(SnapshotHeaderInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(info.Engine, "info.Engine");
        ArgumentNullException.ThrowIfNull(info.VmConfig, "info.VmConfig");
        ArgumentNullException.ThrowIfNull(info.HostCpuModel, "info.HostCpuModel");
        ArgumentNullException.ThrowIfNull(info.Regions, "info.Regions");
        CheckString(info.Engine, SnapshotFormat.MaxEngineBytes, "engine name");
        CheckString(info.HostCpuModel, SnapshotFormat.MaxHostCpuModelBytes, "host CPU model");
        CheckString(info.VmConfig, SnapshotFormat.MaxVmConfigBytes, "VM config");
        if (CheckRegions(info.Regions) is { } problem) throw new ArgumentException($"invalid snapshot regions: {problem}", nameof(info));
    }

    private static void CheckString(string s, int max, string what)
    {
        int n;
        try { n = new UTF8Encoding(false, true).GetByteCount(s); }
        catch (EncoderFallbackException) { throw new ArgumentException($"the {what} is not valid Unicode"); }
        if (n > max) throw new ArgumentException($"the {what} is {n} bytes of UTF-8 (limit {max})");
    }
}
