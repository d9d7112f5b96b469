using System.Buffers.Binary;
using System.IO.Hashing;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

public sealed class CorruptStreamTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly byte[] _stream;
    private readonly byte[] _expectedFile;

    public CorruptStreamTests()
    {
        var s = Scenario.Default();
        _stream = StreamFormTests.BuildStream(s, sink =>
        {
            s.WriteMix(sink, seed: 9);
            // Re-send a few pages so that some records are superseded.
            for (int p = 0; p < 6; p++) s.Write(sink, 0, p, p % 3 == 0 ? null : Scenario.Content(0, p, 1));
        });
        var direct = Scenario.Default();
        string path = _dir.File("direct.snap");
        using (var sink = SnapshotFileSink.Create(path, direct.Info, fsync: false, createdAt: Scenario.FixedTime, snapshotId: Scenario.FixedId))
        {
            direct.WriteMix(sink, seed: 9);
            for (int p = 0; p < 6; p++) direct.Write(sink, 0, p, p % 3 == 0 ? null : Scenario.Content(0, p, 1));
            sink.Complete(direct.Sections);
        }
        _expectedFile = File.ReadAllBytes(path);
        File.Delete(path);
    }

    public void Dispose() => _dir.Dispose();

    private string Output => _dir.File("out.snap");

    /// <summary>Offsets where records start (the first is right after the stream header), and the end.</summary>
    private List<long> RecordStarts()
    {
        var starts = new List<long>();
        long at = BinaryPrimitives.ReadUInt32LittleEndian(_stream.AsSpan(12));
        while (at < _stream.Length)
        {
            starts.Add(at);
            byte type = _stream[at];
            ulong b = BinaryPrimitives.ReadUInt64LittleEndian(_stream.AsSpan((int)at + 8));
            uint c = BinaryPrimitives.ReadUInt32LittleEndian(_stream.AsSpan((int)at + 16));
            at += 32 + type switch { 1 => c * 4096L, 3 or 4 => (long)b, _ => 0 };
        }
        starts.Add(at);
        return starts;
    }

    private SnapshotFormatException ConvertFails(byte[] stream, string because)
    {
        var e = FluentActions.Invoking(() => SnapshotConverter.Convert(new MemoryStream(stream), Output))
            .Should().Throw<SnapshotFormatException>(because).Which;
        File.Exists(Output).Should().BeFalse(because);
        File.Exists(Output + SnapshotFormat.PartialSuffix).Should().BeFalse(because);
        return e;
    }

    private static void PatchRecord(byte[] stream, long at, Action<Span<byte>> patch)
    {
        var rec = stream.AsSpan((int)at, 32);
        patch(rec);
        BinaryPrimitives.WriteUInt64LittleEndian(rec[24..], XxHash3.HashToUInt64(rec[..24]));
    }

    [Fact]
    public void The_good_stream_converts_to_the_direct_file()
    {
        SnapshotConverter.Convert(new MemoryStream(_stream), Output);
        File.ReadAllBytes(Output).Should().Equal(_expectedFile);
    }

    [Fact]
    public void Truncation_at_every_record_boundary_and_random_offsets_is_rejected()
    {
        var rng = new Random(7);
        var starts = RecordStarts();
        starts[^1].Should().Be(_stream.Length);
        var cuts = starts.SelectMany(s => new[] { s - 1, s, s + 1, s + 31 })
            .Concat([0, 1, 15, 16, 100])
            .Concat(Enumerable.Range(0, 40).Select(_ => rng.NextInt64(_stream.Length)))
            .Where(c => c >= 0 && c < _stream.Length).Distinct();
        foreach (long cut in cuts)
            ConvertFails(_stream[..(int)cut], $"cut at {cut}").Message.Should().MatchRegex("truncated|empty|too short");
    }

    [Fact]
    public void Data_after_the_end_record_is_rejected()
    {
        ConvertFails([.. _stream, 0], "trailing byte").Message.Should().Contain("after the end record");
    }

    [Fact]
    public void Absurd_record_fields_are_rejected_without_huge_allocations()
    {
        var starts = RecordStarts();
        long firstPages = starts.First(s => _stream[s] == 1);
        long state = starts.First(s => _stream[s] == 3);
        long trailer = starts.First(s => _stream[s] == 4);

        var a = (byte[])_stream.Clone();
        PatchRecord(a, firstPages, r => BinaryPrimitives.WriteUInt32LittleEndian(r[16..], uint.MaxValue));
        ConvertFails(a, "page count").Message.Should().Contain("out of range");

        var b = (byte[])_stream.Clone();
        PatchRecord(b, firstPages, r => BinaryPrimitives.WriteUInt32LittleEndian(r[4..], 9));
        ConvertFails(b, "region").Message.Should().Contain("out of range");

        var c = (byte[])_stream.Clone();
        PatchRecord(c, state, r => BinaryPrimitives.WriteUInt64LittleEndian(r[8..], 1UL << 40));
        ConvertFails(c, "state length").Message.Should().Contain("state record");

        var d = (byte[])_stream.Clone();
        PatchRecord(d, trailer, r => BinaryPrimitives.WriteUInt64LittleEndian(r[8..], 1UL << 40));
        ConvertFails(d, "trailer length").Message.Should().Contain("trailer record");

        var e = (byte[])_stream.Clone();
        PatchRecord(e, firstPages, r => r[0] = 77);
        ConvertFails(e, "type").Message.Should().Contain("unknown record");

        var f = (byte[])_stream.Clone();
        f[firstPages + 9] ^= 1;
        ConvertFails(f, "unhashed").Message.Should().Contain("bad record header");
    }

    [Fact]
    public void Corrupt_page_data_that_is_not_superseded_fails_the_trailer_cross_check()
    {
        long lastPages = RecordStarts().Last(s => s < _stream.Length && _stream[s] == 1);
        var bad = (byte[])_stream.Clone();
        bad[lastPages + 32 + 100] ^= 0x40;
        ConvertFails(bad, "page data").Message.Should().Contain("does not match its checksum in the trailer");
    }

    [Fact]
    public void Seeded_fuzz_of_300_stream_mutations_is_rejected_or_harmless()
    {
        var rng = new Random(31337);
        int rejected = 0;
        for (int i = 0; i < 300; i++)
        {
            var bytes = (byte[])_stream.Clone();
            long at = rng.NextInt64(bytes.Length);
            string what;
            switch (rng.Next(3))
            {
                case 0:
                    what = $"truncate to {at}";
                    bytes = bytes[..(int)at];
                    break;
                case 1:
                {
                    int bit = rng.Next(8);
                    what = $"flip bit {bit} at {at}";
                    bytes[at] ^= (byte)(1 << bit);
                    break;
                }
                default:
                {
                    int n = (int)Math.Min(1 + rng.Next(16), bytes.Length - at);
                    what = $"overwrite {n} bytes at {at}";
                    for (int k = 0; k < n; k++) bytes[at + k] = (byte)rng.Next(256);
                    bytes[at] = (byte)(_stream[at] ^ (1 + rng.Next(255)));
                    break;
                }
            }
            try
            {
                SnapshotConverter.Convert(new MemoryStream(bytes), Output);
                // Only a change inside a superseded page record can go unnoticed: the result must still be right.
                File.ReadAllBytes(Output).Should().Equal(_expectedFile, what);
                File.Delete(Output);
            }
            catch (SnapshotFormatException e)
            {
                e.Message.Should().Contain("snapshot stream", what);
                File.Exists(Output).Should().BeFalse(what);
                File.Exists(Output + SnapshotFormat.PartialSuffix).Should().BeFalse(what);
                rejected++;
            }
        }
        rejected.Should().BeGreaterThan(250);
    }

    [Fact]
    public void Newer_stream_version_is_rejected()
    {
        var bytes = (byte[])_stream.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), 3);
        ConvertFails(bytes, "major").Message.Should().Contain("snapshot format 3.2 is newer than this MiniVmm (2.x)");
    }
}
