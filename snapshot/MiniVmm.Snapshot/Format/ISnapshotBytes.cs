using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// The bytes of a snapshot in the file form, read at offsets: a local file (<see cref="FileSnapshotBytes"/>) or an object
/// in a store (range reads). <see cref="SnapshotFile"/> validates and reads through it, so lazy restore, eager restore
/// and verification serve pages the same way from either.
/// </summary>
public interface ISnapshotBytes : IDisposable
{
    long Length { get; }

    /// <summary>Reads up to <c>destination.Length</c> bytes at <paramref name="offset"/>; fewer only at the end. Thread-safe.</summary>
    int Read(Span<byte> destination, long offset);
}

/// <summary>A snapshot file opened for pread.</summary>
public sealed class FileSnapshotBytes(SafeFileHandle handle) : ISnapshotBytes
{
    public SafeFileHandle Handle { get; } = handle;
    public long Length => RandomAccess.GetLength(Handle);
    public int Read(Span<byte> destination, long offset) => RandomAccess.Read(Handle, destination, offset);
    public void Dispose() => Handle.Dispose();
}
