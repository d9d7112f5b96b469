using MiniVmm.Devices.Virtio.Block;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>The 4 KiB pages a drive's writes touched between two snapshots: exact, concurrent, and given back when a link fails.</summary>
public sealed class DriveChangeLogTests
{
    private const int Block = 4096;

    private static long[] Blocks(ulong[] bits, long count) => [.. Enumerable.Range(0, (int)count).Where(b => BlockBits.Get(bits, b)).Select(b => (long)b)];

    [Fact]
    public void A_write_marks_every_page_it_touches_and_nothing_else()
    {
        var log = new DriveChangeLog(10 * Block + 100); // 11 pages, the last one short
        log.Mark(Block - 1, 2);              // the last byte of page 0 and the first of page 1
        log.Mark(5 * Block, Block);          // exactly page 5
        log.Mark(10 * Block + 50, 1000);     // runs past the end: page 10 only
        log.Mark(11 * Block, Block);         // wholly past the end: ignored
        log.Mark(3 * Block, 0);              // empty: ignored
        log.Count.Should().Be(4);
        Blocks(log.TakeAndReset(), log.PageCount).Should().Equal(0, 1, 5, 10);
    }

    [Fact]
    public void Taking_the_set_starts_an_empty_one_and_a_failed_link_gives_its_pages_back()
    {
        var log = new DriveChangeLog(64 * Block * 3);
        log.Mark(2 * Block, 1);
        log.Mark(130 * Block, 1);
        var first = log.TakeAndReset();
        log.Count.Should().Be(0, "writes after the freeze belong to the next link");
        log.Mark(7 * Block, 1);
        log.MergeBack(first);
        Blocks(log.TakeAndReset(), log.PageCount).Should().Equal(2, 7, 130);
    }

    [Fact]
    public void Concurrent_writers_lose_no_mark()
    {
        var log = new DriveChangeLog(4096L * Block);
        Parallel.For(0, 4, t =>
        {
            for (int b = t; b < 4096; b += 4) log.Mark((long)b * Block + 7, 1);
        });
        log.Count.Should().Be(4096);
    }
}
