using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

/// <summary>
/// <see cref="ISnapshotSink.WriteZeroPages"/> records pages as zero without their bytes: in both forms, and through the
/// interface's default (a sink that forwards zero buffers), the output must be byte for byte what handing the sink
/// zero-filled pages makes of the same writes, with the same zero count.
/// </summary>
public sealed class ZeroPagesTests : IDisposable
{
    private const int Page = Scenario.Page;
    private static readonly Guid ParentId = new("6f1c2e0a-3b5d-4e7f-9a8b-1c2d3e4f5a6b");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    public enum Form { File, Stream, DefaultImplementation, IncrementalFile }

    [Theory]
    [InlineData(Form.File)]
    [InlineData(Form.Stream)]
    [InlineData(Form.DefaultImplementation)]
    [InlineData(Form.IncrementalFile)]
    public void Recorded_zero_runs_give_the_same_snapshot_as_zero_filled_pages(Form form)
    {
        var s = new Scenario((0, 300), (0x1_0000_0000, 70));
        var (written, zerosWritten) = Build(s, form, "written", record: false);
        var (recorded, zerosRecorded) = Build(s, form, "recorded", record: true);
        recorded.Should().Equal(written);
        zerosRecorded.Should().Be(zerosWritten).And.Be(10 + 150 + 70);
        if (form is Form.Stream or Form.IncrementalFile) return; // a link reads through its parent
        using var file = SnapshotFile.Open(_dir.File("recorded"));
        var read = new byte[Page];
        file.ReadPages(0, 12, read);
        read.Should().Equal(new byte[Page], "a page stored earlier and recorded as zero later reads as zero");
        file.ReadPages(0, 20, read);
        read.Should().Equal(Scenario.Content(0, 20, 0));
    }

    [Fact]
    public void A_run_outside_its_region_is_refused()
    {
        var s = new Scenario((0, 16));
        using var sink = SnapshotFileSink.Create(_dir.File("bad"), s.Info, fsync: false);
        sink.Invoking(k => k.WriteZeroPages(0, 10, 7)).Should().Throw<ArgumentOutOfRangeException>();
        sink.Invoking(k => k.WriteZeroPages(0, 0, -1)).Should().Throw<ArgumentOutOfRangeException>();
        sink.Invoking(k => k.WriteZeroPages(1, 0, 1)).Should().Throw<ArgumentOutOfRangeException>();
        sink.ZeroPages.Should().Be(0);
    }

    private (byte[] Bytes, long ZeroPages) Build(Scenario s, Form form, string name, bool record)
    {
        string path = _dir.File(name);
        var info = form is Form.IncrementalFile ? s.Info with { Parent = new SnapshotParent(ParentId, 1) } : s.Info;
        ISnapshotSink sink = form switch
        {
            Form.Stream => SnapshotStreamSink.Create(new FileStream(path, FileMode.Create), info, createdAt: Scenario.FixedTime, snapshotId: Scenario.FixedId),
            _ => SnapshotFileSink.Create(path, info, fsync: false, createdAt: Scenario.FixedTime, snapshotId: Scenario.FixedId),
        };
        if (form is Form.DefaultImplementation) sink = new ForwardingSink(sink);
        long zeros;
        using (sink)
        {
            // Data in region 0 below page 150; then zeros over never-stored and over stored pages, and data again.
            var block = new byte[150 * Page];
            for (int p = 0; p < 150; p++) Scenario.Content(0, p, 0).CopyTo(block, p * Page);
            sink.WritePages(0, 0, block);
            Zero(sink, 0, 150, 150, record);  // never stored: nothing to write
            Zero(sink, 0, 10, 10, record);    // stored earlier: the last write wins
            sink.WritePages(0, 20, Scenario.Content(0, 20, 0));
            Zero(sink, 1, 0, 70, record);     // a whole region
            zeros = sink.ZeroPages;
            sink.Complete(s.Sections);
        }
        return (File.ReadAllBytes(path), zeros);
    }

    private static void Zero(ISnapshotSink sink, int region, long first, int count, bool record)
    {
        if (record) sink.WriteZeroPages(region, first, count);
        else sink.WritePages(region, first, new byte[count * Page]);
    }

    /// <summary>A sink with no zero-run path of its own: <see cref="ISnapshotSink.WriteZeroPages"/> is the interface's.</summary>
    private sealed class ForwardingSink(ISnapshotSink inner) : ISnapshotSink
    {
        public bool IsSeekable => inner.IsSeekable;
        public long WritePages(int region, long firstPage, ReadOnlySpan<byte> pages) => inner.WritePages(region, firstPage, pages);
        public long PagesWritten => inner.PagesWritten;
        public long ZeroPages => inner.ZeroPages;
        public long BytesWritten => inner.BytesWritten;
        public TimeSpan FsyncTime => inner.FsyncTime;
        public void Complete(IReadOnlyList<StateSection> sections) => inner.Complete(sections);
        public void Abort() => inner.Abort();
        public void Dispose() => inner.Dispose();
    }
}
