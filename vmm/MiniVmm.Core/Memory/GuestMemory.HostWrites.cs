namespace MiniVmm.Core.Memory;

/// <summary>
/// KVM's dirty log sees only vCPU writes. Devices that write guest RAM from the host (virtio DMA) would be missed by a
/// dirty-log pre-copy snapshot, so while <see cref="StartHostWriteLog"/> is on, every write through this class (and
/// every span write a device reports with <see cref="NoteHostWrite"/>) sets the page's bit in a log that the snapshot
/// source merges into KVM's. Off (the normal case) it costs one volatile read per write.
/// </summary>
public sealed partial class GuestMemory
{
    private volatile ulong[][]? _hostWrites;

    /// <summary>Starts logging host writes (all bits clear).</summary>
    public void StartHostWriteLog() =>
        _hostWrites = _regions.Select(r => new ulong[(r.PageCount + 63) / 64]).ToArray();

    public void StopHostWriteLog() => _hostWrites = null;

    /// <summary>Records that the host wrote [gpa, gpa+length) (a device that wrote through a region span calls this).</summary>
    public void NoteHostWrite(GuestAddress gpa, ulong length)
    {
        var log = _hostWrites;
        if (log is null || length == 0) return;
        if (!TryFind(gpa, length, out var region, out ulong offset)) return;
        var bits = log[region.Index];
        for (ulong page = offset / PageSize, last = (offset + length - 1) / PageSize; page <= last; page++)
            Interlocked.Or(ref bits[page / 64], 1UL << (int)(page % 64));
    }

    /// <summary>ORs the pages the host wrote in region <paramref name="region"/> since the last call into
    /// <paramref name="bitmap"/> and clears them.</summary>
    public void TakeHostWrites(int region, Span<ulong> bitmap)
    {
        var log = _hostWrites;
        if (log is null) return;
        var bits = log[region];
        for (int i = 0; i < bits.Length && i < bitmap.Length; i++)
            bitmap[i] |= Interlocked.Exchange(ref bits[i], 0);
    }
}
