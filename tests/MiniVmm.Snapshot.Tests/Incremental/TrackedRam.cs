using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Incremental;

namespace MiniVmm.Snapshot.Tests.Incremental;

/// <summary>Anonymous guest RAM for the tracker tests, with page-granular writes, reads and the set a bitmap holds.</summary>
internal sealed class TrackedRam : IDisposable
{
    public const ulong Page = GuestMemory.PageSize;

    /// <param name="populatedPages">The first pages written before tracking starts; the rest stays never touched.</param>
    public TrackedRam(long pages, long populatedPages, bool hugePages = false)
    {
        Memory = GuestMemory.CreateAnonymous((ulong)pages * Page, hugePages);
        for (long p = 0; p < populatedPages; p++) WritePage(p, 0xA5);
    }

    public GuestMemory Memory { get; }
    public long Pages => Memory.Regions[0].PageCount;

    /// <summary>Stores one word in the middle of the page: a page is written by any byte of it.</summary>
    public void WritePage(long page, ulong value = 1) => Memory.Write(new GuestAddress((ulong)page * Page + 1024), value);

    public ulong ReadPage(long page) => Memory.Read<ulong>(new GuestAddress((ulong)page * Page + 1024));

    public void Discard(long page, long count) => Memory.Regions[0].Discard((ulong)page * Page, (ulong)count * Page);

    public static long[] SetPages(PageBitmap bitmap)
    {
        var pages = new List<long>();
        for (long p = 0; p < bitmap.PageCount; p++) if (bitmap.Get(p)) pages.Add(p);
        return pages.ToArray();
    }

    public PageBitmap Bitmap(params long[] pages)
    {
        var b = new PageBitmap(Pages);
        foreach (long p in pages) b.Set(p);
        return b;
    }

    public void Dispose() => Memory.Dispose();
}
