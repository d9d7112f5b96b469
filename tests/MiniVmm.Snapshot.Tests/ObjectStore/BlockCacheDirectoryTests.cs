using MiniVmm.Snapshot.ObjectStore;

namespace MiniVmm.Snapshot.Tests.ObjectStore;

/// <summary>The --cache-dir block cache: shared across readers, tied to one object version, never trusted whole.</summary>
public sealed class BlockCacheDirectoryTests : IDisposable
{
    private static readonly ObjectUri Uri = new("bucket", "dir/obj.mvs");
    private readonly string _dir = Directory.CreateTempSubdirectory("minivmm-cache-tests").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (MemoryObjectStore Store, byte[] Content) StoreWith(int length, int seed)
    {
        var store = new MemoryObjectStore();
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        store.PutAsync(Uri.Bucket, Uri.Key, data, default).GetAwaiter().GetResult();
        return (store, data);
    }

    private static byte[] ReadAll(ObjectStoreBytes bytes)
    {
        var all = new byte[bytes.Length];
        for (long at = 0; at < bytes.Length; at += 1 << 20) bytes.Read(all.AsSpan((int)at, (int)Math.Min(1 << 20, bytes.Length - at)), at);
        return all;
    }

    [Fact]
    public void A_second_reader_over_the_same_directory_makes_no_store_reads()
    {
        var (store, content) = StoreWith((9 << 20) + 123, 1);
        using (var first = ObjectStoreBytes.Open(store, Uri, _dir))
        {
            ReadAll(first).Should().Equal(content);
            first.CacheHits.Should().Be(0);
        }
        int reads = store.RangeReads;
        reads.Should().Be(5);
        using var second = ObjectStoreBytes.Open(store, Uri, _dir);
        ReadAll(second).Should().Equal(content);
        store.RangeReads.Should().Be(reads, "every block came from the cache directory");
        second.Fetches.Should().Be(0);
        second.CacheHits.Should().Be(5);
        var blocks = Directory.GetFiles(Directory.GetDirectories(_dir).Single()).Select(Path.GetFileName);
        blocks.Should().BeEquivalentTo(["0", "1", "2", "3", "4"], "no temporary file is left behind");
    }

    [Fact]
    public async Task A_replaced_object_gets_a_directory_of_its_own()
    {
        var (store, _) = StoreWith(3 << 20, 1);
        using (var first = ObjectStoreBytes.Open(store, Uri, _dir)) ReadAll(first);
        var replaced = new byte[3 << 20];
        new Random(2).NextBytes(replaced);
        await store.PutAsync(Uri.Bucket, Uri.Key, replaced, default);
        using var second = ObjectStoreBytes.Open(store, Uri, _dir);
        ReadAll(second).Should().Equal(replaced);
        second.CacheHits.Should().Be(0);
        Directory.GetDirectories(_dir).Should().HaveCount(2);
    }

    [Fact]
    public async Task A_cached_block_of_the_wrong_length_is_a_miss_and_is_replaced()
    {
        var (store, content) = StoreWith(5 << 20, 3);
        var stat = (await store.StatAsync(Uri.Bucket, Uri.Key, default))!;
        var cache = new BlockCacheDirectory(_dir, Uri, stat);
        File.WriteAllBytes(Path.Combine(cache.Location, "1"), new byte[100]); // cut short (a crash before the data reached the disk)
        using var bytes = ObjectStoreBytes.Open(store, Uri, _dir);
        ReadAll(bytes).Should().Equal(content);
        bytes.CacheHits.Should().Be(0);
        new FileInfo(Path.Combine(cache.Location, "1")).Length.Should().Be(2 << 20);
    }

    [Fact]
    public void The_key_separates_every_part_of_the_identity()
    {
        var a = BlockCacheDirectory.KeyOf(new ObjectUri("bucket", "a/b"), new ObjectStat(1, "c"));
        var b = BlockCacheDirectory.KeyOf(new ObjectUri("bucket", "a"), new ObjectStat(1, "b/c"));
        var c = BlockCacheDirectory.KeyOf(new ObjectUri("bucket", "a/b"), new ObjectStat(2, "c"));
        new[] { a, b, c }.Should().OnlyHaveUniqueItems().And.AllSatisfy(k => k.Should().MatchRegex("^[0-9a-f]{64}$"));
    }
}
