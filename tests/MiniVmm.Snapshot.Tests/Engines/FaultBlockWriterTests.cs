using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

public sealed class FaultBlockWriterTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(64 * GuestMemory.PageSize);

    public void Dispose() => _memory.Dispose();

    private GuestMemoryRegion Region => _memory.Regions[0];

    [Fact]
    public void Every_queued_copy_reaches_the_sink_by_drain()
    {
        var sink = new RecordingSink();
        using var writer = new FaultBlockWriter(sink, 4, 4, 16, 2, CancellationToken.None);
        for (long first = 0; first < 16; first += 4) writer.TryCopyAndQueue(Region, 0, first, 4).Should().BeTrue();
        writer.TryCopyAndQueue(Region, 0, 16, 16).Should().BeTrue();
        writer.Drain();
        sink.Writes.Select(w => (w.First, w.Data.Length / (int)GuestMemory.PageSize))
            .Should().BeEquivalentTo(new[] { (0L, 4), (4L, 4), (8L, 4), (12L, 4), (16L, 16) });
        writer.Error.Should().BeNull();
    }

    [Fact]
    public void A_whole_window_uses_a_large_buffer_which_is_busy_until_written()
    {
        using var release = new ManualResetEventSlim();
        var sink = new RecordingSink { HoldFirstWrite = release };
        using var writer = new FaultBlockWriter(sink, 4, 2, 16, 1, CancellationToken.None);
        writer.LargeBufferFree.Should().BeTrue();
        writer.TryCopyAndQueue(Region, 0, 0, 16).Should().BeTrue();
        sink.FirstWriteStarted.Wait(Guard).Should().BeTrue();
        writer.LargeBufferFree.Should().BeFalse();
        writer.TryCopyAndQueue(Region, 0, 16, 8).Should().BeFalse("the only large buffer is in flight");
        writer.TryCopyAndQueue(Region, 0, 16, 4).Should().BeTrue("small blocks have their own buffers");
        release.Set();
        writer.Drain();
        writer.LargeBufferFree.Should().BeTrue();
    }

    [Fact]
    public void A_block_larger_than_any_buffer_is_refused()
    {
        using var writer = new FaultBlockWriter(new RecordingSink(), 4, 1, 16, 1, CancellationToken.None);
        writer.TryCopyAndQueue(Region, 0, 0, 17).Should().BeFalse();
    }

    [Fact]
    public void The_first_sink_error_is_kept_and_later_copies_are_dropped()
    {
        using var release = new ManualResetEventSlim();
        var sink = new RecordingSink { HoldFirstWrite = release, Throw = new IOException("disk full") };
        using var writer = new FaultBlockWriter(sink, 4, 3, 16, 1, CancellationToken.None);
        writer.TryCopyAndQueue(Region, 0, 0, 4).Should().BeTrue();
        sink.FirstWriteStarted.Wait(Guard).Should().BeTrue();
        writer.TryCopyAndQueue(Region, 0, 4, 4).Should().BeTrue();
        writer.TryCopyAndQueue(Region, 0, 8, 4).Should().BeTrue();
        release.Set();
        writer.Drain();
        writer.Error.Should().BeOfType<IOException>().Which.Message.Should().Be("disk full");
        sink.Writes.Should().BeEmpty();
    }

    [Fact]
    public void Nothing_is_written_after_cancellation()
    {
        using var cancel = new CancellationTokenSource();
        var sink = new RecordingSink();
        using var writer = new FaultBlockWriter(sink, 4, 2, 16, 1, cancel.Token);
        cancel.Cancel();
        writer.TryCopyAndQueue(Region, 0, 0, 4).Should().BeTrue();
        writer.Drain();
        sink.Writes.Should().BeEmpty();
    }

    [Fact]
    public void After_drain_the_fault_handler_writes_itself()
    {
        using var writer = new FaultBlockWriter(new RecordingSink(), 4, 2, 16, 1, CancellationToken.None);
        writer.Drain();
        writer.TryCopyAndQueue(Region, 0, 0, 4).Should().BeFalse();
        writer.Invoking(w => w.Dispose()).Should().NotThrow("draining twice is harmless");
    }
}
