using System.IO.Pipes;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

public sealed class StreamFormTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    internal static byte[] BuildStream(Scenario s, Action<ISnapshotSink> write)
    {
        var ms = new MemoryStream();
        using (var sink = SnapshotStreamSink.Create(ms, s.Info, leaveOpen: true, createdAt: Scenario.FixedTime, snapshotId: Scenario.FixedId))
        {
            sink.IsSeekable.Should().BeFalse();
            write(sink);
            sink.Complete(s.Sections);
            sink.BytesWritten.Should().Be(ms.Length);
        }
        return ms.ToArray();
    }

    [Fact]
    public void Stream_converted_to_a_file_equals_the_file_written_directly()
    {
        var s = Scenario.Default();
        var stream = BuildStream(s, sink => s.WriteMix(sink, seed: 5));
        File.WriteAllBytes(_dir.File("s.stream"), stream);
        SnapshotConverter.Convert(_dir.File("s.stream"), _dir.File("converted.snap"));

        var direct = new Scenario((0, 48), (0x1_0000_0000, 20));
        var directBytes = direct.Build(_dir, "direct.snap", seed: 5);
        File.ReadAllBytes(_dir.File("converted.snap")).Should().Equal(directBytes);
        using var file = SnapshotFile.Open(_dir.File("converted.snap"));
        s.AssertMatches(file);
    }

    [Fact]
    public void Stream_holds_only_non_zero_pages()
    {
        var s = new Scenario((0, 4096));
        var stream = BuildStream(s, sink =>
        {
            sink.WritePages(0, 0, new byte[4096 * Scenario.Page]);
            s.Write(sink, 0, 100, Scenario.Content(0, 100, 0));
            sink.ZeroPages.Should().Be(4096);
            sink.PagesWritten.Should().Be(1);
        });
        // header + one page record + state + trailer (8 bytes per page + bitmap): far below 16 MiB of RAM
        stream.Length.Should().BeLessThan(4096 + 40 * 1024 + 2000);
    }

    [Fact]
    public void Rewritten_and_re_zeroed_pages_convert_to_the_last_write()
    {
        var s = new Scenario((0, 32));
        var stream = BuildStream(s, sink =>
        {
            for (int p = 0; p < 32; p++) s.Write(sink, 0, p, Scenario.Content(0, p, 0));
            for (int p = 0; p < 32; p += 3) s.Write(sink, 0, p, Scenario.Content(0, p, 1));
            for (int p = 0; p < 32; p += 5) s.Write(sink, 0, p, null);
            var mixed = new byte[8 * Scenario.Page]; // pages 10..17: data, zero, data, ...
            for (int i = 0; i < 8; i += 2) Scenario.Content(0, 10 + i, 2).CopyTo(mixed, i * Scenario.Page);
            sink.WritePages(0, 10, mixed);
            for (int i = 0; i < 8; i++) s.Expected[0][10 + i] = i % 2 == 0 ? Scenario.Content(0, 10 + i, 2) : null;
        });
        SnapshotConverter.Convert(new MemoryStream(stream), _dir.File("r.snap"));
        using var file = SnapshotFile.Open(_dir.File("r.snap"));
        s.AssertMatches(file);
    }

    [Fact]
    public async Task Concurrent_writers_through_a_pipe_convert_to_a_consistent_file()
    {
        var s = new Scenario((0, 512), (0x4000_0000, 256));
        using var server = new AnonymousPipeServerStream(PipeDirection.Out);
        using var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
        var captured = new MemoryStream();
        var reader = Task.Run(() => client.CopyTo(captured));
        using (var sink = SnapshotStreamSink.Create(server, s.Info))
        {
            Parallel.For(0, 4, t =>
            {
                var rng = new Random(t + 100);
                for (int g = 0; g < 2; g++)
                    foreach (int p in Enumerable.Range(0, s.Expected[g].Length).Where(p => p % 4 == t).OrderBy(_ => rng.Next()))
                        s.Write(sink, g, p, rng.Next(3) == 0 ? null : Scenario.Content(g, p, t));
            });
            sink.Complete(s.Sections); // disposes the pipe's write end
        }
        await reader.WaitAsync(TimeSpan.FromSeconds(10));
        captured.Position = 0;
        SnapshotConverter.Convert(captured, _dir.File("pipe.snap"));
        using var file = SnapshotFile.Open(_dir.File("pipe.snap"));
        s.AssertMatches(file);
    }

    [Fact]
    public void Aborted_stream_cannot_be_converted()
    {
        var s = new Scenario((0, 512)); // more than the sink's internal buffer, so part of it reaches the stream
        var ms = new MemoryStream();
        using (var sink = SnapshotStreamSink.Create(ms, s.Info, leaveOpen: true))
        {
            s.WriteMix(sink);
            sink.Abort();
            FluentActions.Invoking(() => sink.WritePages(0, 0, new byte[4096])).Should().Throw<OperationCanceledException>();
        }
        FluentActions.Invoking(() => SnapshotConverter.Convert(new MemoryStream(ms.ToArray()), _dir.File("out.snap")))
            .Should().Throw<SnapshotFormatException>().WithMessage("*is truncated*");
        Directory.EnumerateFileSystemEntries(_dir.Root).Should().BeEmpty();
    }

    [Fact]
    public void A_failing_destination_aborts_the_stream_sink()
    {
        var s = new Scenario((0, 8));
        var sink = SnapshotStreamSink.Create(new FailingStream(), s.Info);
        FluentActions.Invoking(() =>
        {
            for (int p = 0; p < 8; p++) sink.WritePages(0, p, Scenario.Content(0, p, 0));
            sink.Complete(s.Sections);
        }).Should().Throw<IOException>();
        FluentActions.Invoking(() => sink.WritePages(0, 0, new byte[4096])).Should().Throw<OperationCanceledException>();
        sink.Dispose();
    }

    [Fact]
    public void Each_form_points_at_the_other_when_opened_as_the_wrong_one()
    {
        var s = Scenario.Default();
        File.WriteAllBytes(_dir.File("a.stream"), BuildStream(s, sink => s.WriteMix(sink)));
        FluentActions.Invoking(() => SnapshotFile.Open(_dir.File("a.stream")))
            .Should().Throw<SnapshotFormatException>().WithMessage("*stream*convert*");
        s.Build(_dir, "a.snap");
        FluentActions.Invoking(() => SnapshotConverter.Convert(_dir.File("a.snap"), _dir.File("b.snap")))
            .Should().Throw<SnapshotFormatException>().WithMessage("*is a snapshot file*no conversion*");
        File.Exists(_dir.File("b.snap")).Should().BeFalse();
    }

    private sealed class FailingStream : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("Broken pipe");
    }
}
