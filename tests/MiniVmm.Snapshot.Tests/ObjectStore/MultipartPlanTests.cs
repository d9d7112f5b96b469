using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.ObjectStore;

namespace MiniVmm.Snapshot.Tests.ObjectStore;

public sealed class MultipartPlanTests
{
    [Fact]
    public void Parts_cover_the_file_in_order_and_only_inner_memory_parts_go_early()
    {
        // One 64 MiB region at offset 2 MiB: memory ends at 66 MiB; 8 MiB parts 0..7 are whole, part 8 is the tail.
        var plan = new MultipartPlan([new SnapshotRegion(0, 64UL << 20)], 8L << 20);
        plan.MemoryEnd.Should().Be(66L << 20);
        plan.LastPart.Should().Be(8);
        plan.IsEarly(0).Should().BeFalse("part 0 holds the header, final only at completion");
        plan.IsEarly(1).Should().BeTrue();
        plan.IsEarly(8).Should().BeFalse();
        plan.PagesIn(0).Should().Be(6 * 256, "the header area and padding are not guest pages");
        plan.PagesIn(1).Should().Be(8 * 256);
        plan.PagesIn(8).Should().Be(2 * 256);
        plan.PartOf(0, 0).Should().Be(0);
        plan.PartOf(0, 6 * 256).Should().Be(1);
        plan.PartOf(0, 16383).Should().Be(8);
        long fileLength = (66L << 20) + 300_000;
        plan.RangeOf(8, fileLength).Should().Be((64L << 20, fileLength - (64L << 20)));
        long covered = Enumerable.Range(0, plan.LastPart + 1).Sum(p => plan.RangeOf(p, fileLength).Length);
        covered.Should().Be(fileLength);
    }

    [Fact]
    public void Part_size_grows_so_a_huge_guest_stays_under_the_part_limit_and_never_goes_below_5_MiB()
    {
        new MultipartPlan([new SnapshotRegion(0, 64UL << 20)], 1L << 20).PartSize.Should().Be(MultipartPlan.MinPartSize);
        var big = new MultipartPlan([new SnapshotRegion(0, 1UL << 40)]);
        (big.LastPart + 1).Should().BeLessThanOrEqualTo(MultipartPlan.MaxParts);
    }

    [Fact]
    public void Block_map_splits_reads_at_2_MiB_boundaries()
    {
        var map = new BlockMap((5L << 20) + 100);
        map.BlockCount.Should().Be(3);
        map.RangeOf(2).Should().Be((4L << 20, (1 << 20) + 100));
        map.Split((2L << 20) - 10, 30).Should().Equal((0L, (2 << 20) - 10, 10, 0), (1L, 0, 20, 10));
        map.Split(0, 0).Should().BeEmpty();
        FluentActions.Invoking(() => map.Split(5L << 20, 200).ToList()).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Theory]
    [InlineData("s3://bucket/key.mvs", "bucket", "key.mvs")]
    [InlineData("s3://my.bucket-1/dir/vm-1.mvs", "my.bucket-1", "dir/vm-1.mvs")]
    public void Object_uris_parse(string text, string bucket, string key) =>
        ObjectUri.Parse(text).Should().Be(new ObjectUri(bucket, key));

    [Theory]
    [InlineData("s3://")]
    [InlineData("s3://bucket")]
    [InlineData("s3://bucket/")]
    [InlineData("s3:///key")]
    [InlineData("s3://UPPER/key")]
    [InlineData("s3://ab/key")]
    public void Bad_object_uris_are_refused(string text) =>
        FluentActions.Invoking(() => ObjectUri.Parse(text)).Should().Throw<ArgumentException>();
}
