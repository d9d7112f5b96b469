using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// Claims unsaved pages of a range and hands each run of claimed pages to the sink straight from guest memory (no
/// intermediate copy, no allocation), then marks them saved. Used by the fault handler and the scanner alike.
/// </summary>
public sealed class PageSaver(GuestMemory memory, ISnapshotSink sink, PageStates[] states)
{
    public PageStates[] States => states;

    /// <summary>Optional asynchronous path for the fault handler's runs (see <see cref="FaultBlockWriter"/>).</summary>
    public FaultBlockWriter? AsyncWriter { get; set; }

    /// <summary>How long an asynchronous save may wait for a free buffer (see <see cref="FaultBlockWriter.CopyAndQueue"/>).</summary>
    public TimeSpan AsyncWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Saves the unsaved pages of [first, first+count) that this caller manages to claim.</summary>
    public void SaveRange(int region, long first, long count) => SaveRange(region, first, count, async: false);

    /// <summary>
    /// The scanner's way: each claimed run is copied into <paramref name="staging"/>, marked saved at once, then
    /// written from the copy. A write fault on one of these pages waits for a memory copy, never for the disk. Claimed
    /// pages in <paramref name="knownZero"/> (see <see cref="KnownZeroPages"/>) are marked saved and recorded as zero
    /// without being read. Returns the bytes the destination took for them (what a bandwidth cap charges).
    /// </summary>
    public long SaveRangeStaged(int region, long first, long count, byte[] staging, PageBitmap? knownZero = null)
    {
        long written = 0;
        long batch = staging.Length / (long)GuestMemory.PageSize;
        var pages = states[region];
        for (long start = first; start < first + count; start += batch)
        {
            long end = Math.Min(first + count, start + batch);
            long runStart = -1;
            bool runZero = false;
            for (long p = start; p <= end; p++)
            {
                bool claimed = p < end && pages.TryClaim(p);
                bool zero = claimed && knownZero is not null && knownZero.Get(p);
                if (claimed && runStart >= 0 && zero == runZero) continue;
                if (runStart >= 0)
                    written += runZero ? SaveZeroRun(region, runStart, p - runStart) : SaveStagedRun(region, runStart, p - runStart, staging);
                runStart = claimed ? p : -1;
                runZero = zero;
            }
        }
        return written;
    }

    /// <summary>Zero pages the scan recorded without reading them (this saver's scan thread only).</summary>
    public long ZeroPagesUnread { get; private set; }

    private long SaveStagedRun(int region, long first, long count, byte[] staging)
    {
        int bytes = checked((int)(count * (long)GuestMemory.PageSize));
        memory.Regions[region].GetSpan((ulong)first * GuestMemory.PageSize, bytes).CopyTo(staging);
        MarkSaved(region, first, count);
        return sink.WritePrivatePages(region, first, staging.AsSpan(0, bytes));
    }

    private long SaveZeroRun(int region, long first, long count)
    {
        MarkSaved(region, first, count);
        ZeroPagesUnread += count;
        return sink.WriteZeroPages(region, first, count);
    }

    private void MarkSaved(int region, long first, long count)
    {
        var pages = states[region];
        for (long p = first; p < first + count; p++) pages.MarkSaved(p);
    }

    /// <summary>
    /// Like <see cref="SaveRange(int,long,long)"/>; with <paramref name="async"/> (and an <see cref="AsyncWriter"/>)
    /// each claimed run is copied into a buffer and written later by the writer's thread — never by the caller.
    /// </summary>
    public void SaveRange(int region, long first, long count, bool async)
    {
        var pages = states[region];
        long runStart = -1;
        long end = first + count;
        for (long p = first; p < end; p++)
        {
            if (pages.TryClaim(p))
            {
                if (runStart < 0) runStart = p;
            }
            else if (runStart >= 0)
            {
                SaveClaimed(region, runStart, p - runStart, async);
                runStart = -1;
            }
        }
        if (runStart >= 0) SaveClaimed(region, runStart, end - runStart, async);
    }

    private void SaveClaimed(int region, long first, long count, bool async)
    {
        if (async && AsyncWriter is { } writer)
        {
            writer.CopyAndQueue(memory.Regions[region], region, first, (int)count, AsyncWait);
            MarkSaved(region, first, count);
            return;
        }
        WriteRun(region, first, count);
    }

    /// <summary>Writes pages regardless of their state (stop-and-copy and dirty-log re-sends).</summary>
    public void WriteRun(int region, long first, long count)
    {
        var r = memory.Regions[region];
        sink.WritePages(region, first, r.GetSpan((ulong)first * GuestMemory.PageSize, checked((int)(count * (long)GuestMemory.PageSize))));
        var pages = states[region];
        for (long p = first; p < first + count; p++)
            if (!pages.IsSaved(p)) pages.MarkSaved(p);
    }

    public static PageStates[] CreateStates(GuestMemory memory) =>
        memory.Regions.Select(r => new PageStates(r.PageCount)).ToArray();
}
