using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Memory;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// The pages of guest RAM whose entry maps the kernel's shared zero page (never-written RAM: the engine maps the huge
/// zero page into untouched 2 MiB areas before the freeze), found by one PAGEMAP_SCAN per region once the vCPUs run
/// again. The scan records such pages as zero without copying or reading them. A page may be trusted only if it is
/// still unsaved when it is claimed: it has then been write-protected and unwritten since the freeze, so the entry
/// found after the freeze still shows its content at the freeze. Owns its pagemap fd; the bitmaps are allocated before
/// the freeze.
/// </summary>
internal sealed class KnownZeroPages : IDisposable
{
    private readonly PageMapScanner _scanner;
    private readonly GuestMemory _memory;
    private readonly PageBitmap[] _zero;

    private KnownZeroPages(PageMapScanner scanner, GuestMemory memory)
    {
        _scanner = scanner;
        _memory = memory;
        _zero = PageBitmap.ForRegions(memory.Regions.Select(r => r.PageCount));
    }

    /// <summary>Null where the kernel lacks PAGEMAP_SCAN (Linux 6.7+): the scan then reads every page.</summary>
    public static KnownZeroPages? TryCreate(GuestMemory memory, ILogger log)
    {
        if (!PageMapScanner.IsSupported(out string? why))
        {
            log.LogDebug("the snapshot reads never-written pages too: {Why}", why);
            return null;
        }
        return new KnownZeroPages(new PageMapScanner(), memory);
    }

    /// <summary>Pages found by the last <see cref="Find"/>.</summary>
    public long Count { get; private set; }

    public PageBitmap Region(int index) => _zero[index];

    /// <summary>
    /// Fills the bitmaps from the page tables. A failed scan leaves a region's bitmap empty (its pages are read, as
    /// without this class) and is logged: it costs speed, never correctness.
    /// </summary>
    public void Find(ILogger log)
    {
        Count = 0;
        for (int ri = 0; ri < _memory.Regions.Count; ri++)
        {
            var collector = new Collector(_zero[ri]);
            try { Count += _memory.Regions[ri].Scan(_scanner, PageScanQuery.ZeroPage, ref collector); }
            catch (LinuxException e)
            {
                _zero[ri].Clear();
                log.LogWarning("could not find the never-written pages of RAM region {Region}, so the snapshot reads them: {Error}", ri, e.Message);
            }
        }
    }

    private readonly struct Collector(PageBitmap bits) : IPageRunSink
    {
        public void OnRun(ulong offset, ulong length, ulong categories) =>
            bits.SetRange((long)(offset / GuestMemory.PageSize), (long)(length / GuestMemory.PageSize));
    }

    public void Dispose() => _scanner.Dispose();
}
