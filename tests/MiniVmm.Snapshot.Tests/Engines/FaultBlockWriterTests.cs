using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

public sealed class FaultBlockWriterTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(50);
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(64 * GuestMemory.PageSize);

    public void Dispose() => _memory.Dispose();

    private GuestMemoryRegion Region => _memory.Regions[0];

    [Fact]
    public void Every_queued_copy_reaches_the_sink_by_drain_on_the_writer_thread()
    {
        var sink = new RecordingSink();
        using var writer = new FaultBlockWriter(sink, 4, 4, 16, 2, CancellationToken.None);
        for (long first = 0; first < 16; first += 4) writer.CopyAndQueue(Region, 0, first, 4, Guard);
        writer.CopyAndQueue(Region, 0, 16, 16, Guard);
        writer.Drain();
        sink.Writes.Select(w => (w.First, w.Data.Length / (int)GuestMemory.PageSize))
            .Should().BeEquivalentTo(new[] { (0L, 4), (4L, 4), (8L, 4), (12L, 4), (16L, 16) });
        sink.Writes.Should().OnlyContain(w => w.ThreadId != Environment.CurrentManagedThreadId, "the caller never writes");
        writer.Error.Should().BeNull();
    }

    [Fact]
    public void A_whole_window_needs_a_large_buffer_which_is_busy_until_written()
    {
        using var release = new ManualResetEventSlim();
        var sink = new RecordingSink { HoldFirstWrite = release };
        using var writer = new FaultBlockWriter(sink, 4, 2, 16, 1, CancellationToken.None);
        writer.LargeBufferFree.Should().BeTrue();
        writer.CopyAndQueue(Region, 0, 0, 16, Guard);
        sink.FirstWriteStarted.Wait(Guard).Should().BeTrue();
        writer.LargeBufferFree.Should().BeFalse();
        writer.Invoking(w => w.CopyAndQueue(Region, 0, 16, 8, Short)).Should().Throw<SnapshotException>()
            .WithMessage("*stalled*", "the only large buffer is in flight and the wait is bounded");
        writer.CopyAndQueue(Region, 0, 16, 4, Short); // small blocks have their own buffers
        release.Set();
        writer.Drain();
        writer.LargeBufferFree.Should().BeTrue();
    }

    [Fact]
    public void A_waiting_fault_gets_the_first_buffer_that_comes_back()
    {
        using var release = new ManualResetEventSlim();
        var sink = new RecordingSink { HoldFirstWrite = release };
        using var writer = new FaultBlockWriter(sink, 4, 1, 16, 1, CancellationToken.None);
        writer.CopyAndQueue(Region, 0, 0, 4, Guard);
        sink.FirstWriteStarted.Wait(Guard).Should().BeTrue();
        writer.CopyAndQueue(Region, 0, 4, 4, Guard); // no small buffer left: takes the large one
        var third = new Thread(() => writer.CopyAndQueue(Region, 0, 8, 4, Guard));
        third.Start();
        third.Join(TimeSpan.FromMilliseconds(100)).Should().BeFalse("every buffer is in flight");
        release.Set();
        third.Join(Guard).Should().BeTrue();
        writer.Drain();
        sink.Writes.Select(w => w.First).Should().BeEquivalentTo([0L, 4L, 8L]);
        writer.BufferWaits.Should().Be(1, "only the third copy found every buffer in flight");
        writer.BufferWaitTime.Should().BePositive();
    }

    [Fact]
    public void A_copy_that_finds_a_free_buffer_is_not_counted_as_a_wait()
    {
        using var writer = new FaultBlockWriter(new RecordingSink(), 4, 4, 16, 2, CancellationToken.None);
        for (long first = 0; first < 16; first += 4) writer.CopyAndQueue(Region, 0, first, 4, Guard);
        writer.Drain();
        writer.BufferWaits.Should().Be(0);
        writer.BufferWaitTime.Should().Be(TimeSpan.Zero);
    }

    [Theory]
    [InlineData(16L << 20, 512, 4, 4)]       // the default: 8 MiB of 2 MiB base blocks, four 2 MiB windows
    [InlineData(16L << 20, 1, 1024, 6)]      // 1-page blocks: 4 MiB of them, the rest in windows
    [InlineData(256L << 20, 512, 4, 124)]    // a larger budget buys whole windows
    [InlineData(10L << 20, 512, 4, 1)]       // the smallest budget: four base blocks and one window
    public void A_budget_splits_into_4_MiB_of_base_blocks_and_whole_windows(long budget, int basePages, int small, int large)
    {
        FaultBlockWriter.Split(budget, basePages, 512).Should().Be((small, large));
    }

    [Fact]
    public void A_block_larger_than_any_buffer_is_refused()
    {
        using var writer = new FaultBlockWriter(new RecordingSink(), 4, 1, 16, 1, CancellationToken.None);
        writer.Invoking(w => w.CopyAndQueue(Region, 0, 0, 17, Short)).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void The_first_sink_error_is_kept_later_copies_are_dropped_and_waiting_faults_fail_with_it()
    {
        using var release = new ManualResetEventSlim();
        var sink = new RecordingSink { HoldFirstWrite = release, Throw = new IOException("disk full") };
        using var writer = new FaultBlockWriter(sink, 4, 2, 16, 0, CancellationToken.None);
        writer.CopyAndQueue(Region, 0, 0, 4, Guard);
        sink.FirstWriteStarted.Wait(Guard).Should().BeTrue();
        writer.CopyAndQueue(Region, 0, 4, 4, Guard);
        Exception? third = null;
        var fault = new Thread(() =>
        {
            try { writer.CopyAndQueue(Region, 0, 8, 4, Guard); }
            catch (Exception e) { third = e; }
        });
        fault.Start(); // waits: both buffers are in flight
        release.Set();
        fault.Join(Guard).Should().BeTrue("a failed write gives its buffer back or fails the waiter, never leaves it");
        if (third is not null) third.Should().BeOfType<SnapshotException>().Which.Message.Should().Contain("disk full");
        writer.Drain();
        writer.Error.Should().BeOfType<IOException>().Which.Message.Should().Be("disk full");
        sink.Writes.Should().BeEmpty();
    }

    [Fact]
    public void Nothing_is_written_after_cancellation_and_a_waiting_fault_is_released()
    {
        using var cancel = new CancellationTokenSource();
        using var release = new ManualResetEventSlim();
        var sink = new RecordingSink { HoldFirstWrite = release };
        using var writer = new FaultBlockWriter(sink, 4, 1, 16, 0, cancel.Token);
        writer.CopyAndQueue(Region, 0, 0, 4, Guard);
        sink.FirstWriteStarted.Wait(Guard).Should().BeTrue();
        Exception? waited = null;
        var fault = new Thread(() =>
        {
            try { writer.CopyAndQueue(Region, 0, 4, 4, Guard); }
            catch (Exception e) { waited = e; }
        });
        fault.Start();
        cancel.Cancel();
        fault.Join(Guard).Should().BeTrue("cancel must release a fault waiting for a buffer");
        waited.Should().BeAssignableTo<OperationCanceledException>();
        release.Set();
        writer.Drain();
        sink.Writes.Should().ContainSingle("only the write already under way when the snapshot was cancelled");
    }

    [Fact]
    public void After_drain_a_fault_block_is_refused_not_lost()
    {
        using var writer = new FaultBlockWriter(new RecordingSink(), 4, 2, 16, 1, CancellationToken.None);
        writer.Drain();
        writer.Invoking(w => w.CopyAndQueue(Region, 0, 0, 4, Short)).Should().Throw<SnapshotException>();
        writer.Invoking(w => w.Dispose()).Should().NotThrow("draining twice is harmless");
    }
}
