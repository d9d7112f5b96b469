using MiniVmm.Devices.Virtio.Block;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// What an incremental link of a VM with writable drives needs to know about each drive, kept by the VM's snapshot
/// controller from one snapshot to the next: the 4 KiB pages written since the last snapshot's freeze (a
/// <see cref="DriveChangeLog"/> on the drive's backend) and each capture block's hash at that freeze (so a link that
/// stores only the changed pages still records the checksum of the whole drive at its own freeze). A drive without known
/// hashes (never captured by this VM, nor checked by its restore) cannot be linked: the next snapshot is a full one.
/// </summary>
internal sealed class DriveLineage
{
    private sealed class Drive(RawImage image)
    {
        public RawImage Image { get; } = image;
        public DriveChangeLog? Log;
        public ulong[]? ParentHashes;
    }

    private readonly Dictionary<int, Drive> _drives = new();

    /// <summary>
    /// A restored VM's drives hold exactly the restored snapshot's content (restore checked it, or wrote it back):
    /// tracks them from now on, with those hashes as the parent's. Call before the VM runs.
    /// </summary>
    public void StartFromRestore(IReadOnlyList<(int Slot, RawImage Image)> drives, IReadOnlyDictionary<int, ulong[]> hashes)
    {
        foreach (var (slot, image) in drives)
        {
            var d = For(slot, image);
            d.Log ??= Attach(image);
            d.ParentHashes = hashes.GetValueOrDefault(slot);
        }
    }

    /// <summary>Why the next snapshot cannot be an incremental link of the drives' last capture (null: it can).</summary>
    public string? WhyNotLinkable(IReadOnlyList<(int Slot, RawImage Image)> drives)
    {
        foreach (var (slot, image) in drives)
        {
            if (!_drives.TryGetValue(slot, out var d) || d.Image != image || d.Log is null || d.ParentHashes is null)
                return $"drive {slot}'s content at the last snapshot is not known to this VM";
            if (d.ParentHashes.Length != (image.Length + DriveCapture.DefaultBlockSize - 1) / DriveCapture.DefaultBlockSize) return $"drive {slot} changed size";
        }
        return null;
    }

    /// <summary>
    /// At a snapshot's freeze (device quiesced): the blocks of <paramref name="slot"/> written since the last freeze
    /// (all of them when the drive was not tracked), and tracking from now on.
    /// </summary>
    public ulong[]? TakeChanges(int slot, RawImage image)
    {
        var d = For(slot, image);
        if (d.Log is null)
        {
            d.Log = Attach(image);
            return null;
        }
        return d.Log.TakeAndReset();
    }

    /// <summary>The hashes of <paramref name="slot"/>'s blocks at the last snapshot (null: not known).</summary>
    public ulong[]? ParentHashes(int slot) => _drives.GetValueOrDefault(slot)?.ParentHashes;

    /// <summary>A snapshot that captured <paramref name="slot"/> was written: its blocks' hashes are the next link's parent's.</summary>
    public void Committed(int slot, ulong[] hashes)
    {
        if (_drives.TryGetValue(slot, out var d)) d.ParentHashes = hashes;
    }

    /// <summary>A snapshot failed after its freeze: the changes it took count again for the next one.</summary>
    public void Failed(int slot, ulong[]? taken)
    {
        if (taken is not null && _drives.TryGetValue(slot, out var d)) d.Log?.MergeBack(taken);
    }

    private Drive For(int slot, RawImage image)
    {
        if (!_drives.TryGetValue(slot, out var d) || d.Image != image) _drives[slot] = d = new Drive(image);
        return d;
    }

    private static DriveChangeLog Attach(RawImage image)
    {
        var log = new DriveChangeLog(image.Length);
        image.Changes = log;
        return log;
    }
}
