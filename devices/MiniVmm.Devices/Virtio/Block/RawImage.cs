using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Devices.Virtio.Block;

/// <summary>
/// A raw disk image file. A writable image is opened with FileShare.None, which .NET on Linux backs with
/// <c>flock(LOCK_EX|LOCK_NB)</c>, a read-only one with a shared lock: a second VMM that wants to write the same image
/// is refused, as QEMU refuses. The handle may also come from the composition root (O_DIRECT, its own flock).
/// </summary>
public sealed class RawImage : IDisposable
{
    public const int SectorSize = 512;

    /// <summary>O_DIRECT needs buffer address, length and file offset aligned to the host's logical block size;
    /// 4 KiB covers every common one.</summary>
    public const int DirectAlignment = 4096;

    private readonly IFileSpace? _space;
    private readonly byte[] _zeros = new byte[64 * 1024];
    /// <summary>Owns <see cref="File"/>; kept for fsync (FileStream.Flush(true)).</summary>
    private readonly FileStream _stream;

    public RawImage(SafeFileHandle file, string path, bool readOnly, IFileSpace? space = null, SafeFileHandle? direct = null)
    {
        File = file;
        Direct = direct;
        Path = path;
        ReadOnly = readOnly;
        _space = space;
        Length = RandomAccess.GetLength(file);
        _stream = new FileStream(file, readOnly ? FileAccess.Read : FileAccess.ReadWrite, 0);
    }

    /// <summary>Opens <paramref name="spec"/>'s file (buffered). Throws <see cref="DriveException"/> with a clear message.</summary>
    /// <param name="openDirect">For cache=none: opens the same file with O_DIRECT (null when the host refuses).</param>
    public static RawImage Open(DriveSpec spec, IFileSpace? space = null, Func<string, bool, SafeFileHandle?>? openDirect = null)
    {
        try
        {
            if (Directory.Exists(spec.Path)) throw new DriveException($"drive '{spec.Path}' is a directory, not a disk image");
            var handle = System.IO.File.OpenHandle(spec.Path, FileMode.Open,
                spec.ReadOnly ? FileAccess.Read : FileAccess.ReadWrite,
                spec.ReadOnly ? FileShare.Read : FileShare.None);
            SafeFileHandle? direct = null;
            try
            {
                if (spec.Cache == DriveCache.None && openDirect is not null) direct = openDirect(spec.Path, spec.ReadOnly);
                return new RawImage(handle, spec.Path, spec.ReadOnly, space, direct);
            }
            catch
            {
                direct?.Dispose();
                handle.Dispose();
                throw;
            }
        }
        catch (FileNotFoundException e) { throw new DriveException($"drive '{spec.Path}' does not exist", e); }
        catch (DirectoryNotFoundException e) { throw new DriveException($"drive '{spec.Path}' does not exist", e); }
        catch (UnauthorizedAccessException e) { throw new DriveException($"no permission to open drive '{spec.Path}'{(spec.ReadOnly ? "" : " for writing (readonly=on?)")}", e); }
        catch (IOException e)
        {
            // A held lock reads "being used by another process" (another MiniVmm or QEMU has the image).
            throw new DriveException($"cannot open drive '{spec.Path}': {e.Message}", e);
        }
    }

    public SafeFileHandle File { get; }
    /// <summary>An O_DIRECT handle of the same file for aligned requests (cache=none), or null.</summary>
    public SafeFileHandle? Direct { get; }
    public string Path { get; }
    public bool ReadOnly { get; }
    public long Length { get; }
    public ulong Sectors => (ulong)Length / SectorSize;

    /// <summary>Reads at <paramref name="offset"/>; <paramref name="bufferAligned"/> says the buffer's host address is
    /// <see cref="DirectAlignment"/>-aligned (a guest RAM span is aligned exactly as its guest address).</summary>
    public int Read(long offset, Span<byte> destination, bool bufferAligned = false) =>
        RandomAccess.Read(Pick(offset, destination.Length, bufferAligned), destination, offset);

    public void Write(long offset, ReadOnlySpan<byte> source, bool bufferAligned = false)
    {
        _changes?.Mark(offset, source.Length);
        _capture?.BeforeWrite(offset, source.Length);
        RandomAccess.Write(Pick(offset, source.Length, bufferAligned), source, offset);
    }

    private volatile DriveCapture? _capture;

    /// <summary>
    /// A snapshot's capture of this drive (null: none): every write and zeroing first lets it copy the old content.
    /// Set while the device is quiesced; cleared once the capture completed or failed.
    /// </summary>
    public DriveCapture? Capture
    {
        get => _capture;
        set => _capture = value;
    }

    private volatile DriveChangeLog? _changes;

    /// <summary>
    /// The pages written since the last snapshot's freeze (null: not tracked), for the next incremental link. Set
    /// while the device is quiesced; every write and zeroing is marked before it happens.
    /// </summary>
    public DriveChangeLog? Changes
    {
        get => _changes;
        set => _changes = value;
    }

    public void Flush()
    {
        if (!ReadOnly) _stream.Flush(flushToDisk: true);
    }

    /// <summary>Makes [offset, offset+length) read as zeros, deallocating it when <paramref name="unmap"/> and the
    /// host allows.</summary>
    public void Zero(long offset, long length, bool unmap)
    {
        _changes?.Mark(offset, length);
        _capture?.BeforeWrite(offset, length);
        if (unmap && _space is not null && _space.TryPunchHole(File, offset, length)) return;
        while (length > 0)
        {
            int n = (int)Math.Min(length, _zeros.Length);
            RandomAccess.Write(File, _zeros.AsSpan(0, n), offset);
            offset += n;
            length -= n;
        }
    }

    /// <summary>The first offset at or after <paramref name="offset"/> that may hold data (holes of a sparse image are
    /// skipped); <see cref="long.MaxValue"/> when none; the offset itself when the host cannot tell.</summary>
    public long NextData(long offset) => _space?.NextData(File, offset) ?? offset;

    /// <summary>The O_DIRECT handle when the request is aligned for it, else the buffered one.</summary>
    private SafeFileHandle Pick(long offset, int length, bool bufferAligned) =>
        Direct is not null && bufferAligned && offset % DirectAlignment == 0 && length % DirectAlignment == 0 ? Direct : File;

    public void Dispose()
    {
        Direct?.Dispose();
        _stream.Dispose();
    }
}
