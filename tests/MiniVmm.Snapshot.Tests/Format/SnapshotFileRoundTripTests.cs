using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

public sealed class SnapshotFileRoundTripTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Shuffled_pages_round_trip_with_header_sections_and_counters()
    {
        var s = Scenario.Default();
        string path = _dir.File("a.snap");
        using (var sink = SnapshotFileSink.Create(path, s.Info, fsync: true, createdAt: Scenario.FixedTime))
        {
            sink.IsSeekable.Should().BeTrue();
            s.WriteMix(sink);
            long nonZero = s.Expected.Sum(r => r.Count(p => p is not null));
            sink.PagesWritten.Should().Be(nonZero);
            sink.ZeroPages.Should().Be(68 - nonZero);
            sink.BytesWritten.Should().BeGreaterThanOrEqualTo(nonZero * Scenario.Page);
            sink.Complete(s.Sections);
            sink.FsyncTime.Should().BeGreaterThan(TimeSpan.Zero);
        }
        File.Exists(path + SnapshotFormat.PartialSuffix).Should().BeFalse();
        using var file = SnapshotFile.Open(path);
        file.FormatVersion.Should().Be("2.2");
        file.CreatedAt.Should().Be(Scenario.FixedTime);
        s.AssertMatches(file);
        file.RegionDataOffset(0).Should().Be(SnapshotFormat.RegionAlignment);
        file.RegionDataOffset(1).Should().Be(2 * SnapshotFormat.RegionAlignment);
    }

    [Fact]
    public void Multi_page_writes_mixing_zero_and_data_pages_store_only_the_data()
    {
        var s = new Scenario((0x10_0000, 200));
        string path = _dir.File("b.snap");
        using (var sink = SnapshotFileSink.Create(path, s.Info, fsync: false))
        {
            var block = new byte[130 * Scenario.Page]; // spans more than one internal batch
            for (int p = 0; p < 130; p++)
            {
                if (p % 5 == 0) continue;
                Scenario.Content(0, 10 + p, 0).CopyTo(block, p * Scenario.Page);
                s.Expected[0][10 + p] = Scenario.Content(0, 10 + p, 0);
            }
            sink.WritePages(0, 10, block);
            sink.PagesWritten.Should().Be(104);
            sink.ZeroPages.Should().Be(26);
            sink.Complete(s.Sections);
        }
        using var file = SnapshotFile.Open(path);
        s.AssertMatches(file);
        var many = new byte[200 * Scenario.Page];
        file.ReadPages(0, 0, many);
        for (int p = 0; p < 200; p++)
        {
            var page = many.AsSpan(p * Scenario.Page, Scenario.Page);
            if (s.Expected[0][p] is { } e) page.SequenceEqual(e).Should().BeTrue();
            else page.IndexOfAnyExcept((byte)0).Should().Be(-1);
        }
    }

    [Fact]
    public void Rewritten_pages_keep_the_last_write_including_pages_that_became_zero()
    {
        var s = new Scenario((0, 16));
        string path = _dir.File("c.snap");
        using (var sink = SnapshotFileSink.Create(path, s.Info, fsync: false))
        {
            for (int p = 0; p < 16; p++) s.Write(sink, 0, p, Scenario.Content(0, p, 0));
            for (int p = 0; p < 16; p += 2) s.Write(sink, 0, p, Scenario.Content(0, p, 1)); // re-sent with new data
            for (int p = 1; p < 16; p += 4) s.Write(sink, 0, p, null);                       // became zero
            sink.Complete(s.Sections);
        }
        using var file = SnapshotFile.Open(path);
        s.AssertMatches(file);
        file.PresentPages(0).Should().Be(12);
    }

    [Fact]
    public void Concurrent_writers_on_distinct_pages_produce_a_consistent_snapshot()
    {
        var s = new Scenario((0, 1024), (0x8000_0000, 512));
        string path = _dir.File("d.snap");
        using (var sink = SnapshotFileSink.Create(path, s.Info, fsync: false))
        {
            const int threads = 6;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var rng = new Random(t);
                for (int g = 0; g < 2; g++)
                {
                    var mine = Enumerable.Range(0, s.Expected[g].Length).Where(p => p % threads == t).OrderBy(_ => rng.Next()).ToList();
                    foreach (int p in mine) s.Write(sink, g, p, rng.Next(4) == 0 ? null : Scenario.Content(g, p, 0));
                    foreach (int p in mine.Where(_ => rng.Next(3) == 0))
                        s.Write(sink, g, p, rng.Next(4) == 0 ? null : Scenario.Content(g, p, 1));
                }
            });
            sink.Complete(s.Sections);
        }
        using var file = SnapshotFile.Open(path);
        s.AssertMatches(file);
    }

    [Fact]
    public void Zero_pages_are_holes_so_disk_use_follows_non_zero_ram()
    {
        var s = new Scenario((0, 8192)); // 32 MiB of guest RAM
        string path = _dir.File("holes.snap");
        using (var sink = SnapshotFileSink.Create(path, s.Info, fsync: false))
        {
            var zero = new byte[256 * Scenario.Page];
            for (int p = 0; p < 8192; p += 256) sink.WritePages(0, p, zero);
            for (int p = 0; p < 8192; p += 512) s.Write(sink, 0, p, Scenario.Content(0, p, 0)); // 16 pages of data
            sink.ZeroPages.Should().Be(8192);
            sink.PagesWritten.Should().Be(16);
            sink.Complete(s.Sections);
        }
        var apparent = new FileInfo(path).Length;
        apparent.Should().BeGreaterThan(32L << 20);
        // header page + 16 data pages + state + trailer (~72 KiB) + filesystem slack
        DiskUsage.AllocatedBytes(path).Should().BeLessThan(400 * 1024);
        using (var file = SnapshotFile.Open(path))
        {
            s.AssertMatches(file);
            var result = file.Verify();
            result.AbsentPagesChecked.Should().Be(8192 - 16);
            result.BytesRead.Should().BeLessThan(8L << 20, "holes are skipped, not read");
        }

        // A stray write into a hole makes it data, and Verify must still find it.
        using (var h = File.OpenHandle(path, FileMode.Open, FileAccess.Write))
            RandomAccess.Write(h, new byte[] { 9 }, SnapshotFormat.RegionAlignment + 5000L * 4096 + 17);
        using (var file = SnapshotFile.Open(path))
            file.Verify().Errors.Should().ContainSingle().Which.Should().Contain("page 5000 of region 0").And.Contain("absent but not zero");
    }

    [Fact]
    public void Completing_replaces_an_older_snapshot_at_the_same_path()
    {
        var first = new Scenario((0, 4));
        string path = _dir.File("same.snap");
        using (var sink = SnapshotFileSink.Create(path, first.Info, fsync: false))
        {
            first.Write(sink, 0, 0, Scenario.Content(0, 0, 0));
            sink.Complete(first.Sections);
        }
        var second = new Scenario((0, 8));
        using (var sink = SnapshotFileSink.Create(path, second.Info, fsync: false))
        {
            second.Write(sink, 0, 7, Scenario.Content(0, 7, 3));
            using (var old = SnapshotFile.Open(path)) first.AssertMatches(old); // still the old one until Complete
            sink.Complete(second.Sections);
        }
        using var file = SnapshotFile.Open(path);
        second.AssertMatches(file);
    }

    [Fact]
    public void Describe_lists_version_engine_regions_and_sections()
    {
        var s = Scenario.Default();
        s.Build(_dir, "describe.snap");
        using var file = SnapshotFile.Open(_dir.File("describe.snap"));
        string text = file.Describe();
        text.Should().Contain("format      2.2").And.Contain($"snapshot id {Scenario.FixedId}").And.Contain("parent      none (full snapshot)").And.Contain("test-engine").And.Contain("Test CPU")
            .And.Contain("[1] guest 0x100000000..0x100014000").And.Contain("vcpu0 v1: 700 bytes").And.Contain("\"vcpus\":2");
    }

    [Fact]
    public void Verify_reports_progress_up_to_one()
    {
        var s = Scenario.Default();
        s.Build(_dir, "progress.snap");
        using var file = SnapshotFile.Open(_dir.File("progress.snap"));
        var seen = new List<double>();
        var result = file.Verify(new SynchronousProgress(seen.Add));
        result.IsValid.Should().BeTrue();
        result.PresentPagesChecked.Should().Be(s.Expected.Sum(r => r.Count(p => p is not null)));
        (result.PresentPagesChecked + result.AbsentPagesChecked).Should().Be(68);
        seen.Should().NotBeEmpty().And.BeInAscendingOrder();
        seen[^1].Should().Be(1);
    }

    [Fact]
    public void No_regions_and_no_sections_is_a_valid_snapshot()
    {
        var info = new SnapshotHeaderInfo("e", "", "", []);
        string path = _dir.File("empty.snap");
        using (var sink = SnapshotFileSink.Create(path, info, fsync: false)) sink.Complete([]);
        using var file = SnapshotFile.Open(path);
        file.RegionCount.Should().Be(0);
        file.Sections.Should().BeEmpty();
        file.Verify().IsValid.Should().BeTrue();
    }

    private sealed class SynchronousProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
