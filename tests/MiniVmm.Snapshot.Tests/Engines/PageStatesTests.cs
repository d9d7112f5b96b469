using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

public sealed class PageStatesTests
{
    [Fact]
    public void A_page_is_claimed_once_then_saved()
    {
        var states = new PageStates(8);
        states.TryClaim(3).Should().BeTrue();
        states.TryClaim(3).Should().BeFalse("a claimed page belongs to its claimer");
        states.IsSaved(3).Should().BeFalse("claimed is not saved: the copy may still be running");
        states.MarkSaved(3);
        states.IsSaved(3).Should().BeTrue();
        states.TryClaim(3).Should().BeFalse("a saved page is never copied again");
        states.SavedCount.Should().Be(1);
        states.PageCount.Should().Be(8);
    }

    [Fact]
    public void Racing_claimers_get_every_page_exactly_once()
    {
        const int pages = 1 << 16;
        var states = new PageStates(pages);
        var claimedBy = new int[pages];
        using var go = new ManualResetEventSlim();
        var threads = Enumerable.Range(1, 4).Select(id => new Thread(() =>
        {
            go.Wait();
            // Different walking orders, like the fault handler (anywhere) and the scanner (linear).
            for (int i = 0; i < pages; i++)
            {
                int p = id % 2 == 0 ? i : pages - 1 - i;
                if (states.TryClaim(p)) { Interlocked.Increment(ref claimedBy[p]); states.MarkSaved(p); }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        go.Set();
        threads.ForEach(t => t.Join());
        claimedBy.Should().OnlyContain(n => n == 1);
        states.SavedCount.Should().Be(pages);
    }

    [Fact]
    public void WaitUntilSaved_returns_once_another_thread_saved_the_range()
    {
        var states = new PageStates(16);
        for (int p = 4; p < 8; p++) states.TryClaim(p).Should().BeTrue();
        var saver = new Thread(() =>
        {
            Thread.Sleep(20);
            for (int p = 7; p >= 4; p--) states.MarkSaved(p);
        });
        saver.Start();
        states.WaitUntilSaved(4, 4, CancellationToken.None);
        Enumerable.Range(4, 4).Should().OnlyContain(p => states.IsSaved(p));
        saver.Join();
    }

    [Fact]
    public void WaitUntilSaved_gives_up_when_cancelled()
    {
        var states = new PageStates(4);
        states.TryClaim(1);
        using var cancel = new CancellationTokenSource();
        var waiter = new Thread(() => states.WaitUntilSaved(0, 4, cancel.Token));
        waiter.Start();
        cancel.Cancel();
        waiter.Join(TimeSpan.FromSeconds(20)).Should().BeTrue("cancel must release a waiter");
        states.IsSaved(1).Should().BeFalse();
    }
}
