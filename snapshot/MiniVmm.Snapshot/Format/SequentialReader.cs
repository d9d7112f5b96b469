using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace MiniVmm.Snapshot.Format;

/// <summary>Reads up to <c>buffer.Length</c> bytes; returns 0 only at the end of the input.</summary>
internal delegate int ReadSome(Span<byte> buffer);

/// <summary>
/// Reads untrusted input front to back (a stream, or a range of the file), optionally hashing what it reads with XXH3.
/// A short read is a <see cref="SnapshotFormatException"/> naming what was being read and where.
/// </summary>
internal sealed class SequentialReader
{
    private readonly ReadSome _source;
    private readonly string _what;
    private readonly long _baseOffset;
    private XxHash3? _hash;

    public SequentialReader(ReadSome source, string what, long baseOffset = 0)
    {
        _source = source;
        _what = what;
        _baseOffset = baseOffset;
    }

    /// <summary>Bytes consumed so far.</summary>
    public long Position { get; private set; }

    public static SequentialReader ForStream(Stream stream, string what) => new(stream.Read, what);

    public static SequentialReader ForFileRange(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, long length, string what) =>
        ForRange(new FileSnapshotBytes(handle), offset, length, what);

    public static SequentialReader ForRange(ISnapshotBytes handle, long offset, long length, string what)
    {
        long pos = 0;
        return new SequentialReader(buffer =>
        {
            int want = (int)Math.Min(buffer.Length, length - pos);
            if (want <= 0) return 0;
            int n = handle.Read(buffer[..want], offset + pos);
            pos += n;
            return n;
        }, what, offset);
    }

    public void StartHash() => _hash = new XxHash3();

    /// <summary>Stops hashing and returns the XXH3-64 of everything read since <see cref="StartHash"/>.</summary>
    public ulong StopHash()
    {
        ulong h = _hash!.GetCurrentHashAsUInt64();
        _hash = null;
        return h;
    }

    /// <summary>Fills as much of <paramref name="buffer"/> as the input has; returns the count (less only at the end).</summary>
    public int ReadUpTo(Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = _source(buffer[total..]);
            if (n <= 0) break;
            total += n;
        }
        _hash?.Append(buffer[..total]);
        Position += total;
        return total;
    }

    public void ReadExactly(Span<byte> buffer, string field)
    {
        long at = Position;
        int n = ReadUpTo(buffer);
        if (n != buffer.Length)
            throw new SnapshotFormatException(
                $"{_what} is truncated: {field} needs {buffer.Length} bytes at offset {_baseOffset + at} but only {n} are there");
    }

    public ulong U64(string field)
    {
        Span<byte> b = stackalloc byte[8];
        ReadExactly(b, field);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    public uint U32(string field)
    {
        Span<byte> b = stackalloc byte[4];
        ReadExactly(b, field);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>Reads little-endian u64 words straight into <paramref name="words"/>.</summary>
    public void ReadWords(Span<ulong> words, string field)
    {
        ReadExactly(MemoryMarshal.AsBytes(words), field);
        if (!BitConverter.IsLittleEndian) BinaryPrimitives.ReverseEndianness(words, words);
    }
}
