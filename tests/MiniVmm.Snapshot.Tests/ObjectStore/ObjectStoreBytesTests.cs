using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.ObjectStore;

namespace MiniVmm.Snapshot.Tests.ObjectStore;

/// <summary>Reading an object in blocks: who owns the store, and what a store that misbehaves can and cannot do.</summary>
public sealed class ObjectStoreBytesTests
{
    private static readonly ObjectUri Uri = new("bucket", "obj");

    private static MemoryObjectStore StoreWith(int length)
    {
        var store = new MemoryObjectStore();
        var data = new byte[length];
        new Random(1).NextBytes(data);
        store.PutAsync(Uri.Bucket, Uri.Key, data, default).GetAwaiter().GetResult();
        return store;
    }

    [Fact]
    public void Open_disposes_the_store_it_was_given_when_it_throws()
    {
        var missing = new MemoryObjectStore();
        FluentActions.Invoking(() => ObjectStoreBytes.Open(missing, Uri)).Should().Throw<SnapshotFormatException>().WithMessage("*does not exist*");
        missing.Disposed.Should().BeTrue();

        var down = new MemoryObjectStore { Down = true };
        FluentActions.Invoking(() => ObjectStoreBytes.Open(down, Uri)).Should().Throw<ObjectStoreException>().Where(e => e.Unreachable);
        down.Disposed.Should().BeTrue();
    }

    [Fact]
    public async Task Dispose_cancels_running_fetches_and_waits_for_them_before_disposing_the_store()
    {
        var store = StoreWith(3 << 20);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.BeforeRead = async (_, cancel) =>
        {
            started.TrySetResult();
            try { await Task.Delay(Timeout.Infinite, cancel); }
            finally { Thread.Sleep(200); } // a request winding down inside the client after its cancellation
        };
        var bytes = ObjectStoreBytes.Open(store, Uri);
        var reader = Task.Run(() => bytes.Read(new byte[4096], 0));
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        bytes.Dispose();
        store.Disposed.Should().BeTrue();
        store.UsedAfterDispose.Should().Be(0, "the store is disposed only after its running requests ended");
        await FluentActions.Awaiting(() => reader.WaitAsync(TimeSpan.FromSeconds(10))).Should().ThrowAsync<IOException>();
        FluentActions.Invoking(() => bytes.Read(new byte[16], 0)).Should().Throw<ObjectDisposedException>();
    }

    [Fact]
    public async Task A_fetch_that_outlives_the_dispose_wait_keeps_the_store_until_it_ends()
    {
        var store = StoreWith(3 << 20);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.BeforeRead = async (_, _) =>
        {
            started.TrySetResult();
            await Task.Delay(ObjectStoreBytes.DisposeWait + TimeSpan.FromSeconds(1), CancellationToken.None); // a store that ignores cancellation
        };
        var bytes = ObjectStoreBytes.Open(store, Uri);
        var reader = Task.Run(() => bytes.Read(new byte[4096], 0));
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        bytes.Dispose();
        store.Disposed.Should().BeFalse("a request is still inside the store");
        try { await reader.WaitAsync(TimeSpan.FromSeconds(20)); } catch (IOException) { }
        SpinWait.SpinUntil(() => store.Disposed, TimeSpan.FromSeconds(10)).Should().BeTrue("the store goes once its last request ended");
        store.UsedAfterDispose.Should().Be(0);
    }

    [Fact]
    public async Task An_object_replaced_during_the_restore_fails_the_read_instead_of_mixing_versions()
    {
        var store = StoreWith(24 << 20);
        int lastBlockReads = 0;
        store.BeforeRead = (offset, _) =>
        {
            if (offset == 11L << 21) Interlocked.Increment(ref lastBlockReads);
            return Task.CompletedTask;
        };
        using var bytes = ObjectStoreBytes.Open(store, Uri);
        bytes.ETag.Should().Be(MemoryObjectStore.ETagOf(store.Objects["bucket/obj"]));
        var buffer = new byte[4096];
        bytes.Read(buffer, 0).Should().Be(4096); // blocks 0-4 fetched (read-ahead), the last block (11) is not
        await store.PutAsync(Uri.Bucket, Uri.Key, new byte[24 << 20], default);
        FluentActions.Invoking(() => bytes.Read(buffer, 11L << 21)).Should().Throw<IOException>().WithMessage("*changed*")
            .WithInnerException<ObjectStoreException>().Where(e => !e.Transient && !e.Unreachable);
        lastBlockReads.Should().Be(1, "a changed object is not retried");
        bytes.FailedUnreachable.Should().BeFalse();
    }

    [Theory]
    [InlineData(-1L, "\"etag\"")]
    [InlineData(long.MinValue, "\"etag\"")]
    [InlineData(100L, "")]
    public void A_stat_with_a_negative_length_or_no_etag_is_a_clear_store_error(long length, string etag)
    {
        var store = new MemoryObjectStore { StatAnswer = new ObjectStat(length, etag) };
        FluentActions.Invoking(() => ObjectStoreBytes.Open(store, Uri)).Should().Throw<ObjectStoreException>()
            .WithMessage("*length*ETag*").Where(e => !e.Transient && !e.Unreachable);
        store.Disposed.Should().BeTrue();
    }

    [Fact]
    public void A_read_of_cached_blocks_allocates_nothing()
    {
        var store = StoreWith((6 << 20) - 1000);
        using var bytes = ObjectStoreBytes.Open(store, Uri);
        var page = new byte[4096];
        var across = new byte[8192];
        for (int round = 0; round < 3; round++) // every block fetched, and the read path compiled
            for (long offset = 0; offset < bytes.Length; offset += 1 << 20) bytes.Read(page, offset);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            bytes.Read(page, (i * 4096L) % (bytes.Length - 4096));
            bytes.Read(across, (2L << 20) - 4096); // across a block boundary
        }
        (GC.GetAllocatedBytesForCurrentThread() - before).Should().Be(0);
        store.RangeReads.Should().Be(3);
    }
}
