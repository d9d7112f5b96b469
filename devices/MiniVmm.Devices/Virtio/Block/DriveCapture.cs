using System.Buffers.Binary;
using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Devices.Virtio.Block;

/// <summary>
/// The content of a drive as of one instant (a snapshot's freeze), captured while the guest keeps writing it: the same
/// idea as write-protecting RAM. From <see cref="Start"/> on, the block backend calls <see cref="BeforeWrite"/> before
/// it overwrites any byte; a block not yet captured is copied into the target first, and a background copier captures
/// the rest. Every block is copied exactly once, so the target ends up holding the drive as it was at the start.
/// All-zero 4 KiB pages are left as holes in the (fresh, sparse) target.
/// <para>
/// Memory is bounded: two block buffers plus 1 bit and 8 bytes (a content hash) per block. Any host I/O error (a full
/// destination) stops the capture for good: later writes go straight to the drive, which stays intact, and
/// <see cref="Error"/> says why the capture (and so the snapshot) failed.
/// </para>
/// </summary>
public sealed class DriveCapture
{
    /// <summary>
    /// 64 KiB: a guest write first touching a block pays one read and one write of this size (~20-60 us on a page-cached
    /// host file), and 16 K blocks per GiB keep the bookkeeping at 130 KiB per GiB. Smaller blocks cost more hashes and
    /// copier iterations for no gain; larger ones make the first small random write after the freeze slower.
    /// </summary>
    public const int DefaultBlockSize = 64 * 1024;

    /// <summary>All-zero 4 KiB pages are left as holes in the target (the file system's allocation unit).</summary>
    private const int HolePage = 4096;

    private readonly SafeFileHandle _drive;
    private readonly Func<long, long>? _nextData;
    private readonly SafeFileHandle _target;
    private readonly ulong[] _copied;
    private readonly ulong[] _hashes;
    private readonly byte[] _writerBuffer;
    private readonly byte[] _copierBuffer;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile Exception? _error;
    private volatile bool _started;
    private int _copierStarted;
    private long _blocksDone;
    private long _bytesStored;
    private long _copiedBeforeWrite;
    private long _blocksToDo;
    private ulong[]? _storedPages;

    /// <param name="drive">the drive, read at block offsets (its writes go through <see cref="BeforeWrite"/>)</param>
    /// <param name="length">the drive's length in bytes</param>
    /// <param name="target">an empty file, already sized to <paramref name="length"/> (holes read as zeros)</param>
    /// <param name="nextData">where the drive's next data is (lseek SEEK_DATA; null: read every block): the copier
    /// records holes without reading them</param>
    public DriveCapture(SafeFileHandle drive, long length, SafeFileHandle target, int blockSize = DefaultBlockSize,
        Func<long, long>? nextData = null)
    {
        _nextData = nextData;
        if (blockSize < 4096 || (blockSize & (blockSize - 1)) != 0) throw new ArgumentException($"block size {blockSize} is not a power of two of at least 4 KiB");
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _drive = drive;
        _target = target;
        Length = length;
        BlockSize = blockSize;
        BlockCount = (length + blockSize - 1) / blockSize;
        _copied = new ulong[(BlockCount + 63) / 64];
        _hashes = new ulong[BlockCount];
        _writerBuffer = new byte[blockSize];
        _copierBuffer = new byte[blockSize];
        _blocksToDo = BlockCount;
    }

    public long Length { get; }
    public int BlockSize { get; }
    public long BlockCount { get; }
    /// <summary>Why the capture failed (null: it did not).</summary>
    public Exception? Error => _error;
    /// <summary>Bytes written into the target (zero blocks are holes and cost nothing).</summary>
    public long BytesStored => Interlocked.Read(ref _bytesStored);
    /// <summary>Blocks a guest write had to copy first (the rest the copier took).</summary>
    public long CopiedBeforeWrite => Interlocked.Read(ref _copiedBeforeWrite);
    public long BlocksDone => Interlocked.Read(ref _blocksDone);
    /// <summary>Completes when every block is captured, or the capture failed or was cancelled.</summary>
    public Task Completion => _done.Task;

    /// <summary>
    /// The capture's instant: call while nothing writes the drive (the device is quiesced), then attach it to the
    /// backend before the device runs again. Copy-before-write is live from here on; the copier starts.
    /// </summary>
    /// <remarks>Idempotent: a second call starts no second copier.</remarks>
    public void Start(CancellationToken cancel)
    {
        if (Interlocked.Read(ref _blocksDone) >= _blocksToDo) _done.TrySetResult(); // a link of nothing changed
        StartCopyBeforeWrite();
        if (Interlocked.Exchange(ref _copierStarted, 1) != 0) return;
        var copier = new Thread(() => CopyRemaining(cancel)) { Name = "drive-capture", IsBackground = true };
        copier.Start();
    }

    /// <summary>
    /// Makes this capture an incremental link: only the blocks holding a page of <paramref name="changedPages"/> (the
    /// 4 KiB pages written since the parent's freeze, a <see cref="DriveChangeLog"/>'s set) are read, and of those only
    /// the changed pages are stored; every other block still holds the parent's content, whose hashes
    /// <paramref name="parentHashes"/> gives, so <see cref="Checksum"/> is still that of the whole drive at this
    /// instant. Call before <see cref="Start"/>.
    /// </summary>
    public void LimitToChangedPages(ReadOnlySpan<ulong> parentHashes, ulong[] changedPages)
    {
        if (_started) throw new InvalidOperationException("a capture is limited to the changed pages before it starts");
        long pages = (Length + HolePage - 1) / HolePage;
        if (parentHashes.Length != BlockCount || changedPages.Length != BlockBits.Words(pages))
            throw new ArgumentException($"the parent's drive has {parentHashes.Length} blocks and {changedPages.Length * 64L} change bits; this one {BlockCount} blocks of {pages} pages");
        parentHashes.CopyTo(_hashes);
        int perBlock = BlockSize / HolePage;
        long todo = 0;
        for (long b = 0; b < BlockCount; b++)
        {
            bool changed = false;
            for (long p = b * perBlock; p < Math.Min((b + 1) * perBlock, pages) && !changed; p++) changed = BlockBits.Get(changedPages, p);
            if (changed) todo++;
            else BlockBits.Set(_copied, b);
        }
        _storedPages = (ulong[])changedPages.Clone();
        _blocksToDo = todo;
    }

    /// <summary>The 4 KiB pages this capture holds: empty when it is a full one (every block), else a link's changed set.</summary>
    public ReadOnlySpan<ulong> StoredPages => _storedPages;
    public bool IsLink => _storedPages is not null;

    /// <summary>Each block's content hash at the capture's instant (valid once complete): the next link's parent hashes.</summary>
    public ulong[] BlockHashes() => (ulong[])_hashes.Clone();

    /// <summary>Copy-before-write only, no copier (<see cref="Start"/> does both; tests drive the two apart). Idempotent.</summary>
    public void StartCopyBeforeWrite() => _started = true;

    /// <summary>Waits for <see cref="Completion"/>; false when it did not complete in time.</summary>
    public bool WaitCompleted(TimeSpan timeout) => _done.Task.Wait(timeout);

    /// <summary>
    /// The backend is about to overwrite [<paramref name="offset"/>, +<paramref name="length"/>): copies the blocks of
    /// that range not captured yet. Never throws: a failure ends the capture, the write goes ahead.
    /// </summary>
    public void BeforeWrite(long offset, long length)
    {
        if (!_started || length <= 0 || _error is not null || offset >= Length) return;
        long first = offset / BlockSize;
        long last = Math.Min((offset + length - 1) / BlockSize, BlockCount - 1);
        for (long b = first; b <= last; b++)
        {
            if (IsCopied(b)) continue;
            lock (_gate)
            {
                if (IsCopied(b) || _error is not null) continue;
                if (Copy(b, _writerBuffer)) Interlocked.Increment(ref _copiedBeforeWrite);
            }
        }
    }

    /// <summary>The capture's checksum: XxHash3 over the per-block XxHash3 values (valid once complete).</summary>
    public ulong Checksum => DriveChecksum.Combine(_hashes);

    private bool IsCopied(long block) => (Volatile.Read(ref _copied[block >> 6]) & (1UL << (int)(block & 63))) != 0;

    /// <summary>Copies one block under the gate; false (and the capture failed) on an I/O error.</summary>
    private bool Copy(long block, byte[] buffer)
    {
        long offset = block * BlockSize;
        int n = (int)Math.Min(BlockSize, Length - offset);
        var data = buffer.AsSpan(0, n);
        try
        {
            FileReads.ReadFully(_drive, data, offset);
            _hashes[block] = XxHash3.HashToUInt64(data);
            // Only the 4 KiB pages that hold data (and, in a link, changed since the parent), in runs: a sparse drive's
            // copy costs its data, not 64 KiB per block; a link costs the pages the guest wrote.
            for (int page = 0; page < n;)
            {
                int end = page;
                while (end < n && Stores(offset + end) && data[end..Math.Min(end + HolePage, n)].ContainsAnyExcept((byte)0)) end = Math.Min(end + HolePage, n);
                if (end > page)
                {
                    RandomAccess.Write(_target, data[page..end], offset + page);
                    Interlocked.Add(ref _bytesStored, end - page);
                    page = end;
                }
                else page += HolePage;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            Fail(e);
            return false;
        }
        Volatile.Write(ref _copied[block >> 6], _copied[block >> 6] | 1UL << (int)(block & 63));
        if (Interlocked.Increment(ref _blocksDone) == _blocksToDo) _done.TrySetResult();
        return true;
    }

    /// <summary>Whether the page at drive offset <paramref name="offset"/> goes into the target (a link stores its changed pages only).</summary>
    private bool Stores(long offset) => _storedPages is null || BlockBits.Get(_storedPages, offset / HolePage);

    private void Fail(Exception e)
    {
        _error ??= e;
        _done.TrySetResult();
    }

    /// <summary>Ends the capture without completing it (a snapshot that failed or was cancelled): writes go straight on.</summary>
    public void Cancel()
    {
        lock (_gate) Fail(new OperationCanceledException("the drive capture was cancelled"));
    }

    private void CopyRemaining(CancellationToken cancel)
    {
        if (_blocksToDo == 0) { _done.TrySetResult(); return; }
        // Holes: a block not captured yet has not been written since the start (a write captures it first), so where
        // SEEK_DATA found no data after the start there is none still, and the block is recorded as zeros unread.
        long dataFrom = -1;
        for (long b = 0; b < BlockCount; b++)
        {
            if (_error is not null) return;
            if (cancel.IsCancellationRequested) { Cancel(); return; }
            if (IsCopied(b)) continue;
            long offset = b * BlockSize;
            bool hole = false;
            if (_nextData is not null)
            {
                if (dataFrom < offset)
                {
                    try { dataFrom = _nextData(offset); }
                    catch (Exception e) when (e is IOException or ObjectDisposedException) { dataFrom = offset; }
                }
                hole = dataFrom >= Math.Min(offset + BlockSize, Length);
            }
            lock (_gate)
            {
                if (IsCopied(b) || _error is not null) continue;
                if (hole) MarkHole(b);
                else Copy(b, _copierBuffer);
            }
        }
    }

    /// <summary>A block that is a hole in the drive: zeros, so nothing to write (under the gate).</summary>
    private void MarkHole(long block)
    {
        int n = (int)Math.Min(BlockSize, Length - block * BlockSize);
        _hashes[block] = n == BlockSize ? _zeroBlockHash ??= XxHash3.HashToUInt64(new byte[BlockSize]) : XxHash3.HashToUInt64(new byte[n]);
        Volatile.Write(ref _copied[block >> 6], _copied[block >> 6] | 1UL << (int)(block & 63));
        if (Interlocked.Increment(ref _blocksDone) == _blocksToDo) _done.TrySetResult();
    }

    private ulong? _zeroBlockHash;
}

/// <summary>
/// The content checksum of a drive image, the same however it was read: XxHash3 of each block (the last one may be
/// short), then XxHash3 over those values in order (little-endian). Lets a capture hash blocks in any order and a
/// restore check a drive or a capture file in one sequential pass.
/// </summary>
public static class DriveChecksum
{
    public static ulong Combine(ReadOnlySpan<ulong> blockHashes)
    {
        var hash = new XxHash3();
        Span<byte> word = stackalloc byte[8];
        foreach (ulong h in blockHashes)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(word, h);
            hash.Append(word);
        }
        return hash.GetCurrentHashAsUInt64();
    }

    /// <summary>The checksum of the first <paramref name="length"/> bytes of <paramref name="file"/>.</summary>
    /// <exception cref="IOException">The file is shorter than <paramref name="length"/>, or cannot be read.</exception>
    public static ulong Compute(SafeFileHandle file, long length, int blockSize = DriveCapture.DefaultBlockSize, CancellationToken cancel = default) =>
        Combine(BlockHashes(file, length, blockSize, cancel));

    /// <summary>Each block's hash of the first <paramref name="length"/> bytes of <paramref name="file"/> (what <see cref="Compute"/> combines).</summary>
    /// <exception cref="IOException">The file is shorter than <paramref name="length"/>, or cannot be read.</exception>
    public static ulong[] BlockHashes(SafeFileHandle file, long length, int blockSize = DriveCapture.DefaultBlockSize, CancellationToken cancel = default)
    {
        var buffer = new byte[blockSize];
        var blocks = new ulong[(length + blockSize - 1) / blockSize];
        for (long b = 0; b < blocks.Length; b++)
        {
            cancel.ThrowIfCancellationRequested();
            long offset = b * blockSize;
            var data = buffer.AsSpan(0, (int)Math.Min(blockSize, length - offset));
            FileReads.ReadFully(file, data, offset);
            blocks[b] = XxHash3.HashToUInt64(data);
        }
        return blocks;
    }
}
