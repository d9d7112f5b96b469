using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

/// <summary>
/// Header, state and trailer carry the same snapshot id: parts of two snapshots of the same layout, each intact and
/// checksum-valid on its own, are refused when joined (format 1.0 accepted a header spliced onto another body).
/// </summary>
public sealed class SnapshotBindingTests : IDisposable
{
    private static readonly Guid IdA = new("11111111-2222-4333-8444-555555555555");
    private static readonly Guid IdB = new("99999999-8888-4777-8666-555555555555");

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Same scenario (so the same layout and state length), different page content and id.</summary>
    private byte[] Build(string name, Guid id, int seed)
    {
        var s = Scenario.Default();
        string path = _dir.File(name);
        using (var sink = SnapshotFileSink.Create(path, s.Info, fsync: false, createdAt: Scenario.FixedTime, snapshotId: id))
        {
            s.WriteMix(sink, seed);
            sink.Complete(s.Sections);
        }
        return File.ReadAllBytes(path);
    }

    private SnapshotFormatException OpenFails(byte[] bytes)
    {
        string path = _dir.File("spliced.snap");
        File.WriteAllBytes(path, bytes);
        return FluentActions.Invoking(() => SnapshotFile.Open(path)).Should().Throw<SnapshotFormatException>().Which;
    }

    [Fact]
    public void Each_file_opens_and_reports_its_id()
    {
        Build("a.snap", IdA, 1);
        Build("b.snap", IdB, 2);
        using (var a = SnapshotFile.Open(_dir.File("a.snap"))) a.SnapshotId.Should().Be(IdA);
        using (var b = SnapshotFile.Open(_dir.File("b.snap"))) b.SnapshotId.Should().Be(IdB);
    }

    [Fact]
    public void A_header_spliced_onto_another_snapshots_body_is_refused()
    {
        var a = Build("a.snap", IdA, 1);
        var b = Build("b.snap", IdB, 2);
        a.Length.Should().Be(b.Length, "the splice needs the same layout");
        var spliced = (byte[])b.Clone();
        a.AsSpan(0, SnapshotFormat.HeaderAreaSize).CopyTo(spliced);
        OpenFails(spliced).Message.Should().Contain($"trailer belongs to snapshot {IdB}, the header to {IdA}")
            .And.Contain("joined to another snapshot's body");
    }

    [Fact]
    public void Another_snapshots_state_and_trailer_are_refused()
    {
        var a = Build("a.snap", IdA, 1);
        var b = Build("b.snap", IdB, 2);
        var spliced = (byte[])a.Clone();
        // Everything after the memory area (state, padding, trailer, end marker) from b.
        long stateOffset = BitConverter.ToInt64(a, 32);
        b.AsSpan((int)stateOffset).CopyTo(spliced.AsSpan((int)stateOffset));
        OpenFails(spliced).Message.Should().Contain($"belongs to snapshot {IdB}, the header to {IdA}");
    }

    [Fact]
    public void A_stream_header_joined_to_another_streams_records_does_not_convert()
    {
        var s1 = Scenario.Default();
        var s2 = Scenario.Default();
        var a = BuildStream(s1, IdA, 1);
        var b = BuildStream(s2, IdB, 2);
        int headerLength = BitConverter.ToInt32(a, 12);
        BitConverter.ToInt32(b, 12).Should().Be(headerLength);
        var spliced = a[..headerLength].Concat(b[headerLength..]).ToArray();
        string output = _dir.File("converted.snap");
        FluentActions.Invoking(() => SnapshotConverter.Convert(new MemoryStream(spliced), output, fsync: false))
            .Should().Throw<SnapshotFormatException>().WithMessage($"*belongs to snapshot {IdB}, the header to {IdA}*");
        File.Exists(output).Should().BeFalse();
    }

    private static byte[] BuildStream(Scenario s, Guid id, int seed)
    {
        var ms = new MemoryStream();
        using (var sink = SnapshotStreamSink.Create(ms, s.Info, leaveOpen: true, createdAt: Scenario.FixedTime, snapshotId: id))
        {
            s.WriteMix(sink, seed);
            sink.Complete(s.Sections);
        }
        return ms.ToArray();
    }

    [Fact]
    public void The_all_zero_snapshot_id_is_refused_when_written_and_when_read()
    {
        var s = Scenario.Default();
        FluentActions.Invoking(() => SnapshotFileSink.Create(_dir.File("nil.snap"), s.Info, fsync: false, snapshotId: Guid.Empty))
            .Should().Throw<ArgumentException>();

        // A header whose id was zeroed, with its checksum recomputed: checksum-valid, still refused.
        var bytes = Build("a.snap", IdA, 1);
        byte[] id = IdA.ToByteArray(bigEndian: true);
        int at = bytes.AsSpan(0, SnapshotFormat.HeaderAreaSize).IndexOf(id);
        at.Should().BePositive("the header carries the id");
        Array.Clear(bytes, at, id.Length);
        int length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(length - 8),
            System.IO.Hashing.XxHash3.HashToUInt64(bytes.AsSpan(0, length - 8)));
        OpenFails(bytes).Message.Should().Contain("snapshot id is all zero");
    }
}
