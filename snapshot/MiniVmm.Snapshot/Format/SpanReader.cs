using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Snapshot.Format;

/// <summary>Bounds-checked little-endian reader over untrusted bytes; every failure is a <see cref="SnapshotFormatException"/>.</summary>
internal ref struct SpanReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _data;
    private readonly string _what;
    private int _position;

    public SpanReader(ReadOnlySpan<byte> data, string what)
    {
        _data = data;
        _what = what;
    }

    public readonly int Position => _position;
    public readonly int Remaining => _data.Length - _position;

    public ReadOnlySpan<byte> Bytes(int count, string field)
    {
        if (count < 0 || count > Remaining)
            throw new SnapshotFormatException(
                $"{_what} is corrupt: {field} needs {count} bytes at offset {_position} but only {Remaining} remain");
        var s = _data.Slice(_position, count);
        _position += count;
        return s;
    }

    public byte U8(string field) => Bytes(1, field)[0];
    public ushort U16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, field));
    public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, field));
    public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8, field));

    /// <summary>A u64 that must fit a non-negative long.</summary>
    public long Length64(string field)
    {
        ulong v = U64(field);
        if (v > long.MaxValue) throw new SnapshotFormatException($"{_what} is corrupt: {field} {v} is out of range");
        return (long)v;
    }

    public string String(int length, int maxBytes, string field)
    {
        if (length > maxBytes)
            throw new SnapshotFormatException($"{_what} is corrupt: {field} is {length} bytes long (limit {maxBytes})");
        var bytes = Bytes(length, field);
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw new SnapshotFormatException($"{_what} is corrupt: {field} is not valid UTF-8"); }
    }

    public readonly void ExpectEnd()
    {
        if (Remaining != 0)
            throw new SnapshotFormatException($"{_what} is corrupt: {Remaining} unexpected bytes at offset {_position}");
    }
}
