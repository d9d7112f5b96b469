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

    /// <summary>Saves the unsaved pages of [first, first+count) that this caller manages to claim.</summary>
    public void SaveRange(int region, long first, long count)
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
                WriteRun(region, runStart, p - runStart);
                runStart = -1;
            }
        }
        if (runStart >= 0) WriteRun(region, runStart, end - runStart);
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
