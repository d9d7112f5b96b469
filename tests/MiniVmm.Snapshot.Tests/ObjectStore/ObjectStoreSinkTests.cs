using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.ObjectStore;

namespace MiniVmm.Snapshot.Tests.ObjectStore;

/// <summary>The multipart assembly of the file form: byte-for-byte what the file writer writes, whatever the page order.</summary>
public sealed class ObjectStoreSinkTests : IDisposable
{
    private const int Page = 4096;
    private readonly string _dir = Directory.CreateTempSubdirectory("minivmm-s3-tests").FullName;
    private static readonly Guid Id = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
    private static readonly DateTimeOffset Created = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static SnapshotHeaderInfo Info(params ulong[] sizes)
    {
        ulong address = 0;
        var regions = sizes.Select(s => { var r = new SnapshotRegion(address, s); address += s + (1 << 30); return r; }).ToList();
        return new SnapshotHeaderInfo("write-tracking", "{\"test\":1}", "Test CPU", regions);
    }

    private static byte[] Pages(long first, int count, int seed)
    {
        var data = new byte[count * Page];
        for (int i = 0; i < count; i++)
            if ((first + i + seed) % 7 != 0) // some zero pages among them
                new Random((int)(first + i) * 31 + seed).NextBytes(data.AsSpan(i * Page, Page));
        return data;
    }

    /// <summary>Writes the same page sequence to a file sink and an object sink; returns both results.</summary>
    private (byte[] File, byte[] Object, MemoryObjectStore Store) WriteBoth(SnapshotHeaderInfo info, IEnumerable<(int Region, long First, int Count, int Seed)> writes,
        long partSize = 5L << 20, Action<MemoryObjectStore>? configure = null)
    {
        string path = Path.Combine(_dir, "ref.mvs");
        var store = new MemoryObjectStore();
        configure?.Invoke(store);
        var uri = new ObjectUri("bucket", "snap.mvs");
        using (var file = SnapshotFileSink.Create(path, info, fsync: false, createdAt: Created, snapshotId: Id))
        using (var obj = ObjectStoreSink.Create(store, uri, info, _dir, TimeSpan.FromMinutes(1), partSize, Id, Created))
        {
            foreach (var (region, first, count, seed) in writes)
            {
                var data = Pages(first, count, seed);
                file.WritePages(region, first, data);
                obj.WritePages(region, first, data);
            }
            StateSection[] state = [new("vm.clock", 1, new byte[48]), new("dev.control", 1, [1, 2, 3, 4])];
            file.Complete(state);
            obj.Complete(state);
        }
        return (File.ReadAllBytes(path), store.Objects["bucket/snap.mvs"], store);
    }

    [Fact]
    public void Pages_written_in_any_order_and_again_assemble_into_the_file_the_file_writer_writes()
    {
        var info = Info(24UL << 20, 3UL << 20);
        var rng = new Random(5);
        var writes = new List<(int, long, int, int)>();
        var order = Enumerable.Range(0, 24 * 256 / 64).OrderBy(_ => rng.Next()).ToList();
        foreach (int chunk in order) writes.Add((0, chunk * 64L, 64, 1));
        writes.Add((1, 0, 3 * 256, 2));
        writes.Add((0, 100, 10, 9));   // saved again (the last write wins), after its part may have been uploaded
        writes.Add((0, 4000, 3, 11));
        var (file, obj, store) = WriteBoth(info, writes);
        obj.Length.Should().Be(file.Length);
        obj.AsSpan().SequenceEqual(file).Should().BeTrue("the object is the page-addressed file form, byte for byte");
        store.OpenUploads.Should().Be(0);
        Directory.EnumerateFiles(_dir).Should().ContainSingle("the spool is removed: only the reference file is left");
    }

    [Fact]
    public async Task Complete_waits_for_an_early_upload_in_flight_before_uploading_its_part_again()
    {
        // One 32 MiB region at file offset 2 MiB, 5 MiB parts: part 2 is [10, 15) MiB, pages 2048..3327.
        var info = Info(32UL << 20);
        var store = new MemoryObjectStore();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int held = 0;
        store.BeforePartStored = part => part == 3 && Interlocked.Exchange(ref held, 1) == 0
            ? HoldAsync(started, release) : Task.CompletedTask;
        string path = Path.Combine(_dir, "ref.mvs");
        StateSection[] state = [new("vm.clock", 1, new byte[48])];
        using (var file = SnapshotFileSink.Create(path, info, fsync: false, createdAt: Created, snapshotId: Id))
        using (var sink = ObjectStoreSink.Create(store, new ObjectUri("bucket", "snap.mvs"), info, _dir, TimeSpan.FromMinutes(1), 5L << 20, Id, Created))
        {
            void Write(long first, int count, int seed)
            {
                var data = Pages(first, count, seed);
                file.WritePages(0, first, data);
                sink.WritePages(0, first, data);
            }
            Write(0, 8192, 1);
            await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
            Write(2100, 10, 9); // part 2 changes while its early upload (of the older bytes) is still in flight
            file.Complete(state);
            var completing = Task.Run(() => sink.Complete(state));
            await Task.Delay(300);
            completing.IsCompleted.Should().BeFalse("Complete must wait for the early upload before uploading part 2 again");
            store.PartOverlaps.Should().Be(0);
            release.SetResult();
            await completing.WaitAsync(TimeSpan.FromSeconds(30));
        }
        store.PartOverlaps.Should().Be(0);
        store.LateParts.Should().Be(0);
        store.Objects["bucket/snap.mvs"].AsSpan().SequenceEqual(File.ReadAllBytes(path)).Should().BeTrue("the newer bytes of part 2 are in the object");
    }

    private static async Task HoldAsync(TaskCompletionSource started, TaskCompletionSource release)
    {
        started.SetResult();
        await release.Task.ConfigureAwait(false);
    }

    [Fact]
    public void Early_uploads_racing_Complete_never_overlap_a_reupload_or_land_after_completion()
    {
        // Slow, jittery uploads so early parts are in flight (and finishing, which starts the next) as Complete begins.
        var info = Info(40UL << 20);
        for (int round = 0; round < 4; round++)
        {
            var rng = new Random(round);
            var writes = new List<(int, long, int, int)>();
            for (long first = 0; first < 10240; first += 256) writes.Add((0, first, 256, round));
            for (int i = 0; i < 6; i++) writes.Add((0, rng.Next(10240 - 4), 4, round + 100 + i));
            var (file, obj, store) = WriteBoth(info, writes, configure: s => s.BeforePartStored = _ => Task.Delay(Random.Shared.Next(3)));
            store.PartOverlaps.Should().Be(0, $"round {round}");
            store.LateParts.Should().Be(0, $"round {round}");
            obj.AsSpan().SequenceEqual(file).Should().BeTrue($"round {round}");
        }
    }

    [Fact]
    public void A_guest_smaller_than_one_part_is_one_part()
    {
        var (file, obj, store) = WriteBoth(Info(1UL << 20), [(0, 0, 256, 3)]);
        obj.AsSpan().SequenceEqual(file).Should().BeTrue();
        store.PartUploads.Should().Be(1);
    }

    [Fact]
    public async Task The_object_reads_back_through_ranged_blocks_with_every_page_checked()
    {
        var info = Info(16UL << 20);
        var (_, obj, store) = WriteBoth(info, [(0, 0, 4096, 4)]);
        using var snapshot = SnapshotFile.Open(ObjectStoreBytes.Open(store, new ObjectUri("bucket", "snap.mvs")), "s3://bucket/snap.mvs");
        snapshot.SnapshotId.Should().Be(Id);
        snapshot.Verify().IsValid.Should().BeTrue();
        var page = new byte[Page];
        snapshot.ReadPages(0, 4095, page);
        page.Should().Equal(Pages(4095, 1, 4));

        obj[snapshot.RegionDataOffset(0) + 4095L * Page + 7] ^= 1;
        await store.PutAsync("bucket", "bad.mvs", obj, default);
        using var bad = SnapshotFile.Open(ObjectStoreBytes.Open(store, new ObjectUri("bucket", "bad.mvs")), "s3://bucket/bad.mvs");
        FluentActions.Invoking(() => bad.ReadPages(0, 4095, page)).Should().Throw<SnapshotFormatException>().WithMessage("*checksum*");
    }

    [Fact]
    public void A_store_that_goes_down_fails_the_snapshot_and_leaves_no_object_and_no_spool()
    {
        var info = Info(32UL << 20);
        var store = new MemoryObjectStore();
        var sink = ObjectStoreSink.Create(store, new ObjectUri("bucket", "k"), info, _dir, TimeSpan.FromSeconds(20), 5L << 20, Id, Created);
        sink.WritePages(0, 0, Pages(0, 2048, 1));
        store.Down = true;
        FluentActions.Invoking(() =>
        {
            sink.WritePages(0, 2048, Pages(2048, 2048, 1));
            sink.WritePages(0, 4096, Pages(4096, 4096, 1));
            sink.Complete([new StateSection("vm.clock", 1, new byte[48])]);
        }).Should().Throw<IOException>();
        sink.Abort();
        sink.Dispose();
        store.Objects.Should().BeEmpty();
        Directory.EnumerateFiles(_dir).Should().BeEmpty();
    }

    [Fact]
    public void An_unreachable_store_fails_before_the_snapshot_starts()
    {
        var store = new MemoryObjectStore { Down = true };
        FluentActions.Invoking(() => ObjectStoreSink.Create(store, new ObjectUri("bucket", "k"), Info(8UL << 20), _dir, TimeSpan.FromSeconds(5)))
            .Should().Throw<ObjectStoreException>().Where(e => e.Unreachable);
        Directory.EnumerateFiles(_dir).Should().BeEmpty();
    }
}
