using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Machine.State;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// One drive's content at a chain tip's freeze, resolved from the captures of the chain's links: each 4 KiB page comes
/// from the newest link whose capture holds it (an incremental link holds the pages written since its parent; the base
/// holds all). Reading it checks every block against the tip's checksum of the whole drive, so a missing, replaced or damaged
/// capture anywhere in the chain is caught before a guest sees its disk.
/// </summary>
internal sealed class DriveChainImage : IDisposable
{
    /// <summary>One link's capture: its file and what it records.</summary>
    private sealed record Capture(string CopyPath, DriveRecord Record, SafeFileHandle File);

    private readonly List<Capture> _captures; // tip first; the last one is a full capture

    private DriveChainImage(List<Capture> captures) => _captures = captures;

    public DriveRecord Tip => _captures[0].Record;
    public long Length => Tip.Length;
    public int BlockSize => Tip.BlockSize;
    /// <summary>Every capture file the image reads, tip first.</summary>
    public IEnumerable<string> Files => _captures.Select(c => c.CopyPath);

    /// <summary>
    /// The captures of drive <paramref name="slot"/> along <paramref name="links"/> (snapshot path and its drive records,
    /// tip first), down to the first full capture, each file opened and its length checked.
    /// </summary>
    /// <exception cref="StateRestoreException">A link lacks the drive's capture, a capture file is missing or of the
    /// wrong size, or the captures disagree on the drive's geometry.</exception>
    public static DriveChainImage Open(IReadOnlyList<(string SnapshotPath, IReadOnlyList<DriveRecord> Records)> links, int slot)
    {
        var captures = new List<Capture>();
        try
        {
            foreach (var (snapshotPath, records) in links)
            {
                var record = records.FirstOrDefault(r => r.Slot == slot)
                    ?? throw new StateRestoreException($"snapshot '{snapshotPath}' has no capture of drive {slot}, which the chain's tip captured");
                var tip = captures.Count > 0 ? captures[0].Record : record;
                if (record.Length != tip.Length || record.BlockSize != tip.BlockSize)
                    throw new StateRestoreException($"snapshot '{snapshotPath}' captured drive {slot} as {record.Length} bytes in {record.BlockSize}-byte blocks; " +
                        $"the chain's tip as {tip.Length} in {tip.BlockSize}");
                string copy = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(snapshotPath))!, record.File);
                SafeFileHandle file;
                try { file = System.IO.File.OpenHandle(copy, FileMode.Open, FileAccess.Read); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new StateRestoreException($"the drive {slot} capture '{copy}' of snapshot '{snapshotPath}' cannot be opened: {e.Message}", e);
                }
                captures.Add(new Capture(copy, record, file));
                long length = RandomAccess.GetLength(file);
                if (length != record.Length)
                    throw new StateRestoreException($"the drive {slot} capture '{copy}' is {length} bytes; snapshot '{snapshotPath}' recorded {record.Length}");
                if (!record.IsLink) return new DriveChainImage(captures);
            }
            throw new StateRestoreException($"no link of the chain holds a full capture of drive {slot}: its base captured only changed blocks");
        }
        catch
        {
            foreach (var c in captures) c.File.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads the drive in order (each block from its newest capture), writing it into <paramref name="target"/> when
    /// given (only the 4 KiB pages that hold data when <paramref name="sparse"/>, the target being fresh), and returns
    /// each block's hash and the bytes written.
    /// </summary>
    /// <exception cref="StateRestoreException">The content does not match the tip's checksum.</exception>
    /// <exception cref="IOException">A file cannot be read or written.</exception>
    public (ulong[] Hashes, long BytesWritten) CopyTo(SafeFileHandle? target, bool sparse, CancellationToken cancel = default)
    {
        var buffer = new byte[BlockSize];
        var hashes = new ulong[Tip.BlockCount];
        long written = 0;
        for (long b = 0; b < hashes.Length; b++)
        {
            cancel.ThrowIfCancellationRequested();
            long offset = b * BlockSize;
            var data = buffer.AsSpan(0, (int)Math.Min(BlockSize, Length - offset));
            ReadBlock(data, offset);
            hashes[b] = XxHash3.HashToUInt64(data);
            if (target is not null) written += WriteBlock(target, data, offset, sparse);
        }
        if (DriveChecksum.Combine(hashes) != Tip.Checksum)
            throw new StateRestoreException(_captures.Count == 1
                ? $"the snapshot's drive copy '{_captures[0].CopyPath}' does not match the checksum the snapshot recorded (replaced or corrupted)"
                : $"drive {Tip.Slot} resolved from the captures {string.Join(", ", Files.Select(f => $"'{f}'"))} does not match the checksum the chain's tip recorded (a capture was replaced or corrupted)");
        return (hashes, written);
    }

    /// <summary>The block at <paramref name="offset"/>: runs of pages, each run from the newest capture that holds it.</summary>
    private void ReadBlock(Span<byte> data, long offset)
    {
        const int page = DriveRecord.PageSize;
        if (_captures.Count == 1) { FileReads.ReadFully(_captures[0].File, data, offset); return; }
        for (int p = 0; p < data.Length;)
        {
            var owner = Owner((offset + p) / page);
            int end = p + page;
            while (end < data.Length && Owner((offset + end) / page) == owner) end += page;
            end = Math.Min(end, data.Length);
            FileReads.ReadFully(owner.File, data[p..end], offset + p);
            p = end;
        }
    }

    /// <summary>The newest capture that holds <paramref name="page"/> (the base holds every page).</summary>
    private Capture Owner(long page)
    {
        foreach (var c in _captures)
            if (c.Record.HoldsPage(page)) return c;
        return _captures[^1];
    }

    private static long WriteBlock(SafeFileHandle target, ReadOnlySpan<byte> data, long offset, bool sparse)
    {
        if (!sparse) { RandomAccess.Write(target, data, offset); return data.Length; }
        long written = 0;
        const int page = 4096;
        for (int p = 0; p < data.Length;)
        {
            int end = p;
            while (end < data.Length && data[end..Math.Min(end + page, data.Length)].ContainsAnyExcept((byte)0)) end = Math.Min(end + page, data.Length);
            if (end > p) { RandomAccess.Write(target, data[p..end], offset + p); written += end - p; p = end; }
            else p += page;
        }
        return written;
    }

    public void Dispose()
    {
        foreach (var c in _captures) c.File.Dispose();
    }
}
