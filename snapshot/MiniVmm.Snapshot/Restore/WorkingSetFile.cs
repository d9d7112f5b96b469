using System.Buffers.Binary;
using System.IO.Hashing;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Restore;

/// <summary>
/// The pages a restored guest touched first, in order (guest page numbers = gpa / 4096), stored beside the snapshot as
/// <c>FILE.ws</c>: "MVWSET01", u32 version (1), u32 reserved, u64 count, count × u64, XXH3-64 of all before it.
/// </summary>
public static class WorkingSetFile
{
    private static ReadOnlySpan<byte> Magic => "MVWSET01"u8;
    public const uint Version = 1;

    public static string PathFor(string snapshotPath) => snapshotPath + ".ws";

    public static void Write(string path, IReadOnlyList<ulong> pages)
    {
        string temp = path + ".partial";
        File.WriteAllBytes(temp, Encode(pages));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The file's bytes for <paramref name="pages"/> (also the content of a store's <c>KEY.ws</c> object).</summary>
    public static byte[] Encode(IReadOnlyList<ulong> pages)
    {
        var data = new byte[24 + pages.Count * 8 + 8];
        Magic.CopyTo(data);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(8), Version);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), (ulong)pages.Count);
        for (int i = 0; i < pages.Count; i++) BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(24 + i * 8), pages[i]);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(data.Length - 8), XxHash3.HashToUInt64(data.AsSpan(0, data.Length - 8)));
        return data;
    }

    /// <summary>Largest working-set file read (8 M pages: 32 GiB of guest RAM touched).</summary>
    public const long MaxBytes = 64L << 20;

    public static IReadOnlyList<ulong> Read(string path, ulong maxPage)
    {
        SnapshotFile.RequireRegularSnapshot(path, "working-set file");
        var info = new FileInfo(path);
        if (info.Length < 32 || info.Length > MaxBytes)
            throw new SnapshotFormatException($"working-set file {path} has an impossible size ({info.Length} bytes)");
        return Decode(File.ReadAllBytes(path), maxPage, path);
    }

    /// <summary>Decodes the bytes of a working-set file named <paramref name="name"/> in messages, as untrusted input.</summary>
    public static IReadOnlyList<ulong> Decode(ReadOnlySpan<byte> data, ulong maxPage, string name)
    {
        string path = name;
        if (data.Length < 32 || data.Length > MaxBytes)
            throw new SnapshotFormatException($"working-set file {path} has an impossible size ({data.Length} bytes)");
        if (!data[..8].SequenceEqual(Magic)) throw new SnapshotFormatException($"{path} is not a MiniVmm working-set file");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        if (version != Version) throw new SnapshotFormatException($"working-set file version {version} is not supported (expected {Version})");
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(data[16..]);
        if (count != (ulong)(data.Length - 32) / 8 || (data.Length - 32) % 8 != 0)
            throw new SnapshotFormatException($"working-set file {path} is truncated or has a wrong count");
        if (XxHash3.HashToUInt64(data[..^8]) != BinaryPrimitives.ReadUInt64LittleEndian(data[^8..]))
            throw new SnapshotFormatException($"working-set file {path} is corrupt (checksum mismatch)");
        var pages = new ulong[count];
        for (int i = 0; i < pages.Length; i++)
        {
            pages[i] = BinaryPrimitives.ReadUInt64LittleEndian(data[(24 + i * 8)..]);
            if (pages[i] > maxPage) throw new SnapshotFormatException($"working-set file {path} names page 0x{pages[i]:x} beyond guest RAM");
        }
        return pages;
    }
}
