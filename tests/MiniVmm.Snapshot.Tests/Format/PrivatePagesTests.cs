using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

/// <summary>
/// <see cref="ISnapshotSink.WritePrivatePages"/> classifies and hashes the caller's buffer in place instead of copying it:
/// the output must be byte for byte what <see cref="ISnapshotSink.WritePages"/> makes of the same writes, in both forms.
/// </summary>
public sealed class PrivatePagesTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Private_pages_give_the_same_snapshot_as_copied_pages(bool stream)
    {
        var s = new Scenario((0, 200), (0x1_0000_0000, 70));
        byte[] copied = Build(s, stream, "copied", inPlace: false);
        byte[] inPlace = Build(s, stream, "in-place", inPlace: true);
        inPlace.Should().Equal(copied);
        if (stream) return;
        // And it is the right snapshot, not merely the same one: data pages stored, zero and re-zeroed pages absent.
        using var file = SnapshotFile.Open(_dir.File("in-place"));
        file.PresentPages(0).Should().Be(Enumerable.Range(0, 200).Count(p => p % 7 != 3 && p is < 10 or >= 15));
        var read = new byte[Scenario.Page];
        file.ReadPages(0, 20, read);
        read.Should().Equal(Scenario.Content(0, 20, 0));
    }

    private byte[] Build(Scenario s, bool stream, string name, bool inPlace)
    {
        string path = _dir.File(name);
        FileStream? destination = stream ? new FileStream(path, FileMode.Create) : null;
        using (var sink = stream
            ? SnapshotStreamSink.Create(destination!, s.Info, createdAt: Scenario.FixedTime, snapshotId: Scenario.FixedId)
            : SnapshotFileSink.Create(path, s.Info, fsync: false, createdAt: Scenario.FixedTime, snapshotId: Scenario.FixedId))
        {
            foreach (var w in Writes(s))
            {
                if (inPlace) sink.WritePrivatePages(w.Region, w.First, w.Data);
                else sink.WritePages(w.Region, w.First, w.Data);
            }
            sink.Complete(s.Sections);
        }
        return File.ReadAllBytes(path);
    }

    /// <summary>Blocks larger than one internal batch, zero pages among data, and pages re-sent as zero.</summary>
    private static IEnumerable<(int Region, long First, byte[] Data)> Writes(Scenario s)
    {
        const int page = Scenario.Page;
        for (int g = 0; g < 2; g++)
        {
            int pages = s.Expected[g].Length;
            var block = new byte[pages * page];
            for (int p = 0; p < pages; p++)
                if (p % 7 != 3) Scenario.Content(g, p, 0).CopyTo(block, p * page);
            yield return (g, 0, block);
        }
        yield return (0, 10, new byte[5 * page]);
    }
}
