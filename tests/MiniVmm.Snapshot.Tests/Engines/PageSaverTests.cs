using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>
/// PageSaver over plain anonymous memory: which pages it takes, in which runs, and — the invariant the engine relies
/// on — when a page counts as saved relative to the moment its bytes leave guest RAM.
/// </summary>
public sealed class PageSaverTests : IDisposable
{
    private const int Page = (int)GuestMemory.PageSize;
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(64 * GuestMemory.PageSize);
    private readonly PageStates[] _states;

    public PageSaverTests()
    {
        _states = PageSaver.CreateStates(_memory);
        for (long p = 0; p < 64; p++) Stamp(p, 100 + (ulong)p);
    }

    public void Dispose() => _memory.Dispose();

    private void Stamp(long page, ulong value) => _memory.Write(new GuestAddress((ulong)page * GuestMemory.PageSize), value);

    private static ulong StampOf(byte[] data, int pageInData) => BitConverter.ToUInt64(data, pageInData * Page);

    private static IEnumerable<(long First, long Count)> Runs(RecordingSink sink) =>
        sink.Writes.Select(w => (w.First, (long)w.Data.Length / Page));

    [Fact]
    public void SaveRange_writes_the_runs_it_can_claim_then_marks_them_saved()
    {
        var sink = new RecordingSink(_states);
        foreach (long p in new long[] { 3, 4, 9 }) _states[0].TryClaim(p); // another thread's pages
        new PageSaver(_memory, sink, _states).SaveRange(0, 0, 12);

        Runs(sink).Should().Equal((0, 3), (5, 4), (10, 2));
        sink.Writes.Should().OnlyContain(w => !w.AlreadySaved, "the direct path writes from guest RAM, then marks saved");
        sink.Writes.SelectMany(w => Enumerable.Range(0, w.Data.Length / Page).Select(i => (w.First + i, StampOf(w.Data, i))))
            .Should().OnlyContain(x => x.Item2 == 100 + (ulong)x.Item1);
        Enumerable.Range(0, 12).Where(p => _states[0].IsSaved(p)).Should().Equal(0, 1, 2, 5, 6, 7, 8, 10, 11);
        _states[0].SavedCount.Should().Be(9);
    }

    [Fact]
    public void SaveRange_takes_nothing_already_claimed_or_saved()
    {
        var sink = new RecordingSink(_states);
        var saver = new PageSaver(_memory, sink, _states);
        saver.SaveRange(0, 0, 8);
        saver.SaveRange(0, 0, 8); // a duplicate fault message
        Runs(sink).Should().Equal((0, 8));
    }

    [Fact]
    public void The_staged_path_marks_pages_saved_before_it_writes_their_copy()
    {
        var sink = new RecordingSink(_states);
        _states[0].TryClaim(5);
        new PageSaver(_memory, sink, _states).SaveRangeStaged(0, 0, 10, new byte[4 * Page]);

        Runs(sink).Should().Equal((0, 4), (4, 1), (6, 2), (8, 2)); // runs never exceed the staging buffer
        sink.Writes.Should().OnlyContain(w => w.AlreadySaved,
            "a write fault on these pages must wait for a memory copy only, never for the destination");
        sink.Writes.SelectMany(w => Enumerable.Range(0, w.Data.Length / Page).Select(i => (w.First + i, StampOf(w.Data, i))))
            .Should().OnlyContain(x => x.Item2 == 100 + (ulong)x.Item1);
        _states[0].IsSaved(5).Should().BeFalse();
    }

    [Fact]
    public void The_staged_path_records_known_zero_pages_as_zero_runs_without_reading_them()
    {
        var sink = new RecordingSink(_states);
        var zero = new PageBitmap(64);
        foreach (long p in new long[] { 2, 3, 5, 6 }) zero.Set(p); // every page holds a stamp: "zero" only by the bitmap
        _states[0].TryClaim(5);
        var saver = new PageSaver(_memory, sink, _states);
        saver.SaveRangeStaged(0, 0, 10, new byte[4 * Page], zero);

        Runs(sink).Should().Equal((0, 2), (4, 1), (7, 1), (8, 2));
        sink.ZeroRuns.Should().Equal((2L, 2L, true), (6L, 1L, true));
        saver.ZeroPagesUnread.Should().Be(3);
        Enumerable.Range(0, 10).Where(p => !_states[0].IsSaved(p)).Should().Equal(5);
    }

    [Fact]
    public void The_asynchronous_path_saves_a_copy_taken_before_it_returns()
    {
        var sink = new RecordingSink(_states);
        using var writer = new FaultBlockWriter(sink, 4, 2, 16, 1, CancellationToken.None);
        var saver = new PageSaver(_memory, sink, _states) { AsyncWriter = writer };
        saver.SaveRange(0, 8, 4, async: true);
        Enumerable.Range(8, 4).Should().OnlyContain(p => _states[0].IsSaved(p), "saved as soon as copied out");
        Stamp(8, 999); // the guest writes the page once it is un-protected
        writer.Drain();

        sink.Writes.Should().ContainSingle().Which.First.Should().Be(8);
        StampOf(sink.Writes[0].Data, 0).Should().Be(108, "the image holds the page as it was when saved");
    }

    [Fact]
    public void With_every_buffer_in_flight_the_fault_path_waits_a_bounded_time_and_never_writes_itself()
    {
        using var release = new ManualResetEventSlim();
        var sink = new RecordingSink(_states) { HoldFirstWrite = release };
        using var writer = new FaultBlockWriter(sink, 4, 1, 16, 0, CancellationToken.None);
        var saver = new PageSaver(_memory, sink, _states) { AsyncWriter = writer, AsyncWait = TimeSpan.FromMilliseconds(50) };
        saver.SaveRange(0, 0, 4, async: true);
        sink.FirstWriteStarted.Wait(TimeSpan.FromSeconds(20)).Should().BeTrue(); // the only buffer is now in flight

        saver.Invoking(s => s.SaveRange(0, 4, 4, async: true)).Should().Throw<SnapshotException>().WithMessage("*stalled*");
        Enumerable.Range(4, 4).Should().OnlyContain(p => !_states[0].IsSaved(p), "pages that were not copied are not saved");
        release.Set();
        writer.Drain();
        sink.Writes.Should().ContainSingle().Which.ThreadId.Should().NotBe(Environment.CurrentManagedThreadId);
    }

    [Fact]
    public void WriteRun_rewrites_saved_pages_without_counting_them_twice()
    {
        var sink = new RecordingSink(_states);
        var saver = new PageSaver(_memory, sink, _states);
        saver.SaveRange(0, 0, 4);
        saver.WriteRun(0, 2, 4); // a dirty-log re-send of pages 2..5
        Runs(sink).Should().Equal((0, 4), (2, 4));
        _states[0].SavedCount.Should().Be(6);
    }
}
