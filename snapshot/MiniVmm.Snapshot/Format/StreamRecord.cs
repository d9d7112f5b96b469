using System.Buffers.Binary;
using System.IO.Hashing;

namespace MiniVmm.Snapshot.Format;

internal enum StreamRecordType : byte
{
    /// <summary>A = region, B = first page, C = page count; followed by C pages of data.</summary>
    Pages = 1,
    /// <summary>A = region, B = first page, C = page count; no data. Pages stored earlier that became zero.</summary>
    ZeroPages = 2,
    /// <summary>B = length; followed by the state section.</summary>
    State = 3,
    /// <summary>B = length; followed by the trailer.</summary>
    Trailer = 4,
    /// <summary>B = stream offset of this record. Nothing may follow.</summary>
    End = 5,
}

/// <summary>
/// Stream record header, 32 bytes: <c>u8 type, u8[3] zero, u32 A, u64 B, u32 C, u32 zero, u64 XXH3-64 of the first
/// 24 bytes</c>. Page data is covered by the trailer's per-page checksums, state and trailer by their own.
/// </summary>
internal readonly record struct StreamRecord(StreamRecordType Type, uint A, ulong B, uint C)
{
    public const int Size = 32;
    public const int MaxPages = 1024;

    public void Encode(Span<byte> destination)
    {
        var d = destination[..Size];
        d.Clear();
        d[0] = (byte)Type;
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], A);
        BinaryPrimitives.WriteUInt64LittleEndian(d[8..], B);
        BinaryPrimitives.WriteUInt32LittleEndian(d[16..], C);
        BinaryPrimitives.WriteUInt64LittleEndian(d[24..], XxHash3.HashToUInt64(d[..24]));
    }

    public static StreamRecord Decode(ReadOnlySpan<byte> source, long streamOffset, string what)
    {
        if (XxHash3.HashToUInt64(source[..24]) != BinaryPrimitives.ReadUInt64LittleEndian(source[24..]))
            throw new SnapshotFormatException($"{what} is corrupt: bad record header at offset {streamOffset} (checksum mismatch)");
        var type = (StreamRecordType)source[0];
        if (source[1] != 0 || source[2] != 0 || source[3] != 0 || BinaryPrimitives.ReadUInt32LittleEndian(source[20..]) != 0
            || type is < StreamRecordType.Pages or > StreamRecordType.End)
            throw new SnapshotFormatException($"{what} is corrupt: unknown record (type {source[0]}) at offset {streamOffset}");
        return new StreamRecord(type, BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]), BinaryPrimitives.ReadUInt32LittleEndian(source[16..]));
    }
}
