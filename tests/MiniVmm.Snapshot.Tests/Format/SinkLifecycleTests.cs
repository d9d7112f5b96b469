using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

public sealed class SinkLifecycleTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Abort_deletes_the_partial_file_and_leaves_nothing()
    {
        var s = Scenario.Default();
        string path = _dir.File("x.snap");
        using var sink = SnapshotFileSink.Create(path, s.Info);
        s.WriteMix(sink);
        File.Exists(path + SnapshotFormat.PartialSuffix).Should().BeTrue();
        sink.Abort();
        sink.Abort();
        Directory.EnumerateFileSystemEntries(_dir.Root).Should().BeEmpty();
        FluentActions.Invoking(() => sink.WritePages(0, 0, new byte[4096])).Should().Throw<OperationCanceledException>();
        FluentActions.Invoking(() => sink.Complete(s.Sections)).Should().Throw<OperationCanceledException>();
    }

    [Fact]
    public void Dispose_without_complete_aborts()
    {
        var s = Scenario.Default();
        using (var sink = SnapshotFileSink.Create(_dir.File("y.snap"), s.Info)) s.WriteMix(sink);
        Directory.EnumerateFileSystemEntries(_dir.Root).Should().BeEmpty();
    }

    [Fact]
    public async Task Abort_while_writers_run_leaves_no_file_and_stops_them()
    {
        var s = new Scenario((0, 4096));
        var sink = SnapshotFileSink.Create(_dir.File("race.snap"), s.Info);
        using var started = new CountdownEvent(4);
        var writers = Enumerable.Range(0, 4).Select(t => Task.Factory.StartNew(() =>
        {
            started.Signal();
            var page = Scenario.Content(0, t, 0);
            try
            {
                for (int round = 0; ; round++)
                    for (int p = t; p < 4096; p += 4) sink.WritePages(0, p, page);
            }
            catch (OperationCanceledException) { return true; }
        }, TaskCreationOptions.LongRunning)).ToArray();
        started.Wait();
        Thread.Sleep(20);
        sink.Abort();
        var results = await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(10));
        results.Should().OnlyContain(r => r);
        Directory.EnumerateFileSystemEntries(_dir.Root).Should().BeEmpty();
        sink.Dispose();
    }

    [Fact]
    public void A_complete_file_named_partial_is_rejected_by_open()
    {
        var s = Scenario.Default();
        string path = _dir.File("c.snap");
        using (var sink = SnapshotFileSink.Create(path, s.Info))
        {
            s.WriteMix(sink);
            sink.Complete(s.Sections);
        }
        File.Copy(path, path + SnapshotFormat.PartialSuffix);
        using (SnapshotFile.Open(path)) { }
        FluentActions.Invoking(() => SnapshotFile.Open(path + SnapshotFormat.PartialSuffix))
            .Should().Throw<SnapshotFormatException>().WithMessage("*unfinished snapshot*rename*");
    }

    [Fact]
    public void A_partial_file_is_rejected_by_open()
    {
        var s = Scenario.Default();
        string path = _dir.File("p.snap");
        using var sink = SnapshotFileSink.Create(path, s.Info);
        s.WriteMix(sink);
        File.Exists(path).Should().BeFalse();
        FluentActions.Invoking(() => SnapshotFile.Open(path + SnapshotFormat.PartialSuffix))
            .Should().Throw<SnapshotFormatException>().WithMessage("*unfinished snapshot*");
        File.Copy(path + SnapshotFormat.PartialSuffix, path);
        FluentActions.Invoking(() => SnapshotFile.Open(path))
            .Should().Throw<SnapshotFormatException>().WithMessage("*incomplete*");
    }

    [Fact]
    public void Complete_twice_throws_and_abort_after_complete_keeps_the_file()
    {
        var s = Scenario.Default();
        string path = _dir.File("twice.snap");
        var sink = SnapshotFileSink.Create(path, s.Info, fsync: false);
        s.WriteMix(sink);
        sink.Complete(s.Sections);
        FluentActions.Invoking(() => sink.Complete(s.Sections)).Should().Throw<InvalidOperationException>();
        FluentActions.Invoking(() => sink.WritePages(0, 0, new byte[4096])).Should().Throw<InvalidOperationException>();
        sink.Abort();
        sink.Dispose();
        using var file = SnapshotFile.Open(path);
        s.AssertMatches(file);
    }

    [Fact]
    public void Invalid_sections_fail_complete_and_remove_the_partial_file()
    {
        var s = Scenario.Default();
        string path = _dir.File("dup.snap");
        using var sink = SnapshotFileSink.Create(path, s.Info, fsync: false);
        s.WriteMix(sink);
        FluentActions.Invoking(() => sink.Complete([new StateSection("a", 1, []), new StateSection("a", 2, [])]))
            .Should().Throw<ArgumentException>().WithMessage("*duplicate*");
        Directory.EnumerateFileSystemEntries(_dir.Root).Should().BeEmpty();
    }

    [Fact]
    public void State_larger_than_the_cap_is_rejected()
    {
        var s = new Scenario((0, 1));
        using var sink = SnapshotFileSink.Create(_dir.File("big.snap"), s.Info, fsync: false);
        var big = new byte[SnapshotFormat.MaxStateBytes / 2];
        FluentActions.Invoking(() => sink.Complete([new StateSection("a", 1, big), new StateSection("b", 1, big)]))
            .Should().Throw<ArgumentException>().WithMessage("*64 MiB*");
    }

    [Fact]
    public void Page_arguments_are_checked()
    {
        var s = new Scenario((0, 8));
        using var sink = SnapshotFileSink.Create(_dir.File("args.snap"), s.Info, fsync: false);
        FluentActions.Invoking(() => sink.WritePages(1, 0, new byte[4096])).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => sink.WritePages(-1, 0, new byte[4096])).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => sink.WritePages(0, 7, new byte[8192])).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => sink.WritePages(0, -1, new byte[4096])).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => sink.WritePages(0, 0, new byte[100])).Should().Throw<ArgumentException>();
        sink.WritePages(0, 8, []); // empty write at the end is fine
    }

    private static SnapshotHeaderInfo BadInfo(string why) => why switch
    {
        "unaligned size" => new("e", "", "", [new SnapshotRegion(0, 4095)]),
        "zero size" => new("e", "", "", [new SnapshotRegion(0, 0)]),
        "unaligned address" => new("e", "", "", [new SnapshotRegion(1, 4096)]),
        "overlap" => new("e", "", "", [new SnapshotRegion(0, 8192), new SnapshotRegion(4096, 4096)]),
        "wraps" => new("e", "", "", [new SnapshotRegion(ulong.MaxValue - 4095, 8192)]),
        "too big" => new("e", "", "", [new SnapshotRegion(0, 1UL << 41)]),
        "too many regions" => new("e", "", "", Enumerable.Range(0, 65).Select(i => new SnapshotRegion((ulong)i << 20, 4096)).ToArray()),
        "long config" => new("e", new string('x', SnapshotFormat.MaxVmConfigBytes + 1), "", [new SnapshotRegion(0, 4096)]),
        "long engine" => new(new string('x', 300), "", "", [new SnapshotRegion(0, 4096)]),
        "bad unicode" => new("\ud800", "", "", [new SnapshotRegion(0, 4096)]),
        _ => throw new ArgumentOutOfRangeException(nameof(why)),
    };

    [Theory]
    [InlineData("unaligned size")]
    [InlineData("zero size")]
    [InlineData("unaligned address")]
    [InlineData("overlap")]
    [InlineData("wraps")]
    [InlineData("too big")]
    [InlineData("too many regions")]
    [InlineData("long config")]
    [InlineData("long engine")]
    [InlineData("bad unicode")]
    public void Invalid_header_info_is_rejected_before_anything_is_written(string why)
    {
        var info = BadInfo(why);
        FluentActions.Invoking(() => SnapshotFileSink.Create(_dir.File("bad.snap"), info)).Should().Throw<ArgumentException>(why);
        FluentActions.Invoking(() => SnapshotStreamSink.Create(new MemoryStream(), info)).Should().Throw<ArgumentException>(why);
        Directory.EnumerateFileSystemEntries(_dir.Root).Should().BeEmpty();
    }

    [Fact]
    public void Reader_argument_errors_are_argument_exceptions()
    {
        var s = new Scenario((0, 8));
        s.Build(_dir, "r.snap");
        using var file = SnapshotFile.Open(_dir.File("r.snap"));
        var page = new byte[4096];
        FluentActions.Invoking(() => file.ReadPage(1, 0, page)).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => file.ReadPage(0, 8, page)).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => file.ReadPage(0, 0, new byte[10])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => file.IsPresent(0, -1)).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => file.RegionDataOffset(2)).Should().Throw<ArgumentOutOfRangeException>();
    }
}
