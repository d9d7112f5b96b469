using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Engines;
using MiniVmm.Snapshot.Tests.Incremental;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>
/// <see cref="KnownZeroPages"/> over real anonymous memory: exactly the pages mapped to the kernel's zero page are
/// known zero — not written pages (even if they hold zeros), not pages never touched at all.
/// </summary>
public sealed class KnownZeroPagesTests
{
    [WpAsyncFact]
    public void Only_pages_that_map_the_zero_page_are_known_zero()
    {
        using var memory = GuestMemory.CreateAnonymous(64 * GuestMemory.PageSize);
        static GuestAddress At(long page) => new((ulong)page * GuestMemory.PageSize);
        for (long p = 0; p < 10; p++) memory.Write(At(p), 0x100UL + (ulong)p);
        memory.Write(At(10), 0UL);                                   // written with zeros: its own page
        for (long p = 20; p < 30; p++) memory.Read<ulong>(At(p)).Should().Be(0); // read only: the zero page

        var known = KnownZeroPages.TryCreate(memory, NullLogger.Instance);
        known.Should().NotBeNull("PAGEMAP_SCAN is there");
        using (known)
        {
            known!.Find(NullLogger.Instance);
            Enumerable.Range(0, 64).Where(p => known.Region(0).Get(p)).Should().Equal(Enumerable.Range(20, 10));
            known.Count.Should().Be(10);
        }
    }
}
