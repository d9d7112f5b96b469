using System.Buffers.Binary;
using System.Text;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// The state section (<c>drive{SLOT}</c>) that pairs a snapshot with the content of a writable drive as of its freeze: a
/// sibling file in the snapshot's directory, named by file name only (the two move together), its length and the
/// content checksum of the whole drive at the freeze (<see cref="MiniVmm.Devices.Virtio.Block.DriveChecksum"/>). The
/// trailer's state checksum covers this record, so the pair is checked end to end.
/// Version 1 (a full capture: the file holds every block) is, little-endian: u32 slot, u64 length, u32 block size, u64
/// checksum, u64 bytes stored, u16 name length, the name (UTF-8). Version 2 (an incremental link's capture) appends a
/// u32 word count and that many u64 words of the stored-page bitmap over the drive's 4 KiB pages (page p is bit p%64
/// of word p/64): the file holds those pages, written since the parent's freeze; every other page is the parent's.
/// </summary>
public sealed record DriveRecord(int Slot, long Length, int BlockSize, ulong Checksum, long BytesStored, string File, ulong[]? StoredPages = null)
{
    public const string Prefix = "drive";
    public const ushort Version = 1;
    public const ushort LinkVersion = 2;
    private const int FixedSize = 4 + 8 + 4 + 8 + 8 + 2;

    /// <summary>The unit of a link's stored-page bitmap.</summary>
    public const int PageSize = DriveChangeLog.PageSize;

    /// <summary>True for an incremental link's capture (only the pages changed since the parent).</summary>
    public bool IsLink => StoredPages is not null;

    public long BlockCount => (Length + BlockSize - 1) / BlockSize;
    public long PageCount => (Length + PageSize - 1) / PageSize;

    /// <summary>Whether this capture's file holds the 4 KiB page <paramref name="page"/> (a full capture holds all).</summary>
    public bool HoldsPage(long page) => StoredPages is null || BlockBits.Get(StoredPages, page);

    /// <summary>Pages this capture holds (all of them for a full one).</summary>
    public long PagesHeld => StoredPages is null ? PageCount : BlockBits.Count(StoredPages);

    public static bool IsDriveSection(string id) => id.StartsWith(Prefix, StringComparison.Ordinal) && id.Length > Prefix.Length
        && id.AsSpan(Prefix.Length).IndexOfAnyExceptInRange('0', '9') < 0;

    /// <summary>The sibling file's name for drive <paramref name="slot"/> of the snapshot at <paramref name="snapshotPath"/>.</summary>
    public static string SiblingPath(string snapshotPath, int slot) => $"{snapshotPath}.drive{slot}";

    public StateSection ToSection()
    {
        var name = Encoding.UTF8.GetBytes(File);
        int bitmapBytes = StoredPages is null ? 0 : 4 + StoredPages.Length * 8;
        var data = new byte[FixedSize + name.Length + bitmapBytes];
        var d = data.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(d, (uint)Slot);
        BinaryPrimitives.WriteInt64LittleEndian(d[4..], Length);
        BinaryPrimitives.WriteInt32LittleEndian(d[12..], BlockSize);
        BinaryPrimitives.WriteUInt64LittleEndian(d[16..], Checksum);
        BinaryPrimitives.WriteInt64LittleEndian(d[24..], BytesStored);
        BinaryPrimitives.WriteUInt16LittleEndian(d[32..], (ushort)name.Length);
        name.CopyTo(d[FixedSize..]);
        if (StoredPages is null) return new StateSection(Prefix + Slot, Version, data);
        var bitmap = d[(FixedSize + name.Length)..];
        BinaryPrimitives.WriteUInt32LittleEndian(bitmap, (uint)StoredPages.Length);
        for (int w = 0; w < StoredPages.Length; w++) BinaryPrimitives.WriteUInt64LittleEndian(bitmap[(4 + w * 8)..], StoredPages[w]);
        return new StateSection(Prefix + Slot, LinkVersion, data);
    }

    /// <summary>Decodes a section as untrusted input.</summary>
    /// <exception cref="StateRestoreException">The record is malformed, or names anything but a plain file name.</exception>
    public static DriveRecord FromSection(StateSection s)
    {
        if (s.Version is not (Version or LinkVersion))
            throw new StateRestoreException($"section '{s.Id}' has version {s.Version}; this MiniVmm reads versions {Version} and {LinkVersion}");
        var d = s.Data.AsSpan();
        if (d.Length < FixedSize) throw new StateRestoreException($"section '{s.Id}': {d.Length} bytes, too short for a drive record");
        int slot = (int)BinaryPrimitives.ReadUInt32LittleEndian(d);
        long length = BinaryPrimitives.ReadInt64LittleEndian(d[4..]);
        int blockSize = BinaryPrimitives.ReadInt32LittleEndian(d[12..]);
        ulong checksum = BinaryPrimitives.ReadUInt64LittleEndian(d[16..]);
        long stored = BinaryPrimitives.ReadInt64LittleEndian(d[24..]);
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(d[32..]);
        if (d.Length < FixedSize + nameLength || (s.Version == Version && d.Length != FixedSize + nameLength))
            throw new StateRestoreException($"section '{s.Id}': {d.Length} bytes, {FixedSize + nameLength} expected");
        string name;
        try { name = new UTF8Encoding(false, true).GetString(d.Slice(FixedSize, nameLength)); }
        catch (ArgumentException) { throw new StateRestoreException($"section '{s.Id}': the file name is not UTF-8"); }
        if (s.Id != Prefix + slot) throw new StateRestoreException($"section '{s.Id}' records drive {slot}");
        if (length < 0 || stored < 0 || stored > length) throw new StateRestoreException($"section '{s.Id}': length {length}, {stored} bytes stored");
        if (blockSize < 4096 || (blockSize & (blockSize - 1)) != 0 || blockSize > 1 << 24)
            throw new StateRestoreException($"section '{s.Id}': block size {blockSize} is not a power of two in 4 KiB..16 MiB");
        // A hostile file must not point restore at /etc/shadow or ../x: only a name in the snapshot's own directory.
        if (name.Length == 0 || name is "." or ".." || name.Contains('/') || name.Contains('\0'))
            throw new StateRestoreException($"section '{s.Id}': '{name}' is not a file name in the snapshot's directory");
        ulong[]? storedPages = s.Version == LinkVersion ? ReadBitmap(s.Id, d[(FixedSize + nameLength)..], length) : null;
        return new DriveRecord(slot, length, blockSize, checksum, stored, name, storedPages);
    }

    /// <summary>A link's stored-page bitmap: exactly one bit per 4 KiB page of the drive, none beyond its end.</summary>
    private static ulong[] ReadBitmap(string id, ReadOnlySpan<byte> d, long length)
    {
        long pages = (length + PageSize - 1) / PageSize;
        long words = (pages + 63) / 64;
        if (d.Length < 4 || BinaryPrimitives.ReadUInt32LittleEndian(d) != words || d.Length != 4 + words * 8)
            throw new StateRestoreException($"section '{id}': the stored-page bitmap does not cover the drive's {pages} pages");
        var bitmap = new ulong[words];
        for (int w = 0; w < words; w++) bitmap[w] = BinaryPrimitives.ReadUInt64LittleEndian(d[(4 + w * 8)..]);
        if (pages % 64 != 0 && bitmap[^1] >> (int)(pages % 64) != 0)
            throw new StateRestoreException($"section '{id}': the stored-page bitmap names pages past the drive's end");
        return bitmap;
    }

    /// <summary>The drive records of a snapshot's sections, in slot order.</summary>
    public static IReadOnlyList<DriveRecord> Of(IReadOnlyList<StateSection> sections) =>
        [.. sections.Where(s => IsDriveSection(s.Id)).Select(FromSection).OrderBy(r => r.Slot)];
}
