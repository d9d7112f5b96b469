using System.Buffers.Binary;
using System.IO.Hashing;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

public sealed class CorruptFileTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly Scenario _scenario = Scenario.Default();
    private readonly byte[] _pristine;
    private readonly string _path;

    public CorruptFileTests()
    {
        _pristine = _scenario.Build(_dir, "good.snap");
        _path = _dir.File("good.snap");
    }

    public void Dispose() => _dir.Dispose();

    private int HeaderLength => BinaryPrimitives.ReadInt32LittleEndian(_pristine.AsSpan(12));
    private long StateOffset => BinaryPrimitives.ReadInt64LittleEndian(_pristine.AsSpan(32));
    private long StateLength => BinaryPrimitives.ReadInt64LittleEndian(_pristine.AsSpan(40));
    private long TrailerOffset => BinaryPrimitives.ReadInt64LittleEndian(_pristine.AsSpan(48));
    private long TrailerLength => BinaryPrimitives.ReadInt64LittleEndian(_pristine.AsSpan(56));

    /// <summary>Applies a change to a copy of the good file, fixes the header checksum, and opens it.</summary>
    private SnapshotFormatException OpenPatched(Action<byte[]> patch, bool rehash = true)
    {
        var bytes = (byte[])_pristine.Clone();
        patch(bytes);
        if (rehash)
        {
            int length = HeaderLength;
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(length - 8), XxHash3.HashToUInt64(bytes.AsSpan(0, length - 8)));
        }
        string path = _dir.File("patched.snap");
        File.WriteAllBytes(path, bytes);
        return FluentActions.Invoking(() => SnapshotFile.Open(path)).Should().Throw<SnapshotFormatException>().Which;
    }

    [Fact]
    public void Wrong_magic_is_not_a_snapshot()
    {
        OpenPatched(b => b[0] ^= 0x20, rehash: false).Message.Should().Contain("is not a MiniVmm snapshot (bad magic");
    }

    [Fact]
    public void Empty_and_tiny_files_are_rejected()
    {
        File.WriteAllBytes(_dir.File("empty"), []);
        FluentActions.Invoking(() => SnapshotFile.Open(_dir.File("empty"))).Should().Throw<SnapshotFormatException>().WithMessage("*is empty");
        File.WriteAllBytes(_dir.File("tiny"), [1, 2, 3]);
        FluentActions.Invoking(() => SnapshotFile.Open(_dir.File("tiny"))).Should().Throw<SnapshotFormatException>().WithMessage("*too short*");
    }

    [Fact]
    public void Newer_major_version_is_rejected_with_both_versions_named()
    {
        OpenPatched(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), 3)).Message
            .Should().Contain("snapshot format 3.2 is newer than this MiniVmm (2.x)");
    }

    [Fact]
    public void Newer_minor_version_is_rejected()
    {
        OpenPatched(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(10), 7)).Message
            .Should().Contain("snapshot format 2.7 is newer than this MiniVmm (2.2)");
    }

    [Fact]
    public void Older_major_version_is_rejected()
    {
        OpenPatched(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), 0)).Message
            .Should().Contain("snapshot format 0.2 is older");
        OpenPatched(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), 1)).Message
            .Should().Contain("snapshot format 1.2 is older", "1.x files carry no snapshot id to bind header and body");
    }

    [Fact]
    public void Header_bit_flip_is_a_header_checksum_error()
    {
        OpenPatched(b => b[100] ^= 4, rehash: false).Message.Should().Contain("header checksum mismatch");
    }

    public static TheoryData<string, int, ulong, int, string> AbsurdFields => new()
    {
        // name, offset (negative: from the end of the header), value, width, expected message part
        { "header length", 12, 0xFFFF_FFFF, 4, "header length" },
        { "page size", 20, 8192, 4, "page size 8192" },
        { "flags", 16, 0x8000_0001, 4, "unknown flags" },
        { "state offset", 32, 1UL << 62, 8, "state section" },
        { "state length", 40, 1UL << 40, 8, "state section" },
        { "state length too small", 40, 3, 8, "state section length" },
        { "trailer offset", 48, (1UL << 63) - 1, 8, "trailer" },
        { "trailer length", 56, 1UL << 50, 8, "trailer length" },
        { "file length", 64, 1UL << 62, 8, "truncated" },
        { "file length sign", 64, ulong.MaxValue, 8, "out of range" },
        { "region count", 72, 0xFFFF_FFFF, 4, "regions" },
        { "reserved", 76, 1, 4, "reserved" },
        { "engine length", 80, 0xFFFF, 2, "engine name" },
        { "region 1 size", -16, 1UL << 60, 8, "region 1" },
        { "region 1 size unaligned", -16, 4097, 8, "region 1 size" },
        { "region 1 offset", -8, 1UL << 61, 8, "region 1" },
        { "region 1 offset unaligned", -8, 4 * 1024 * 1024 + 1, 8, "region 1" },
        { "region 1 overlaps region 0", -24, 4096, 8, "overlap" },
    };

    [Theory]
    [MemberData(nameof(AbsurdFields))]
    public void Absurd_header_fields_are_clear_errors(string name, int offset, ulong value, int width, string expected)
    {
        var e = OpenPatched(b =>
        {
            // Region entries sit just before the final checksum.
            int at = offset >= 0 ? offset : HeaderLength - 8 + offset;
            var span = b.AsSpan(at, width);
            if (width == 2) BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)value);
            else if (width == 4) BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)value);
            else BinaryPrimitives.WriteUInt64LittleEndian(span, value);
        });
        e.Message.Should().Contain(expected, name);
    }

    [Fact]
    public void Vm_config_length_beyond_the_header_is_rejected()
    {
        int configLengthAt = 80 + 2 + "test-engine".Length + 2 + "Test CPU @ 1.00GHz".Length;
        OpenPatched(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(configLengthAt), 0xFFFF_FFF0)).Message
            .Should().Contain("VM config");
        OpenPatched(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(configLengthAt), 40_000)).Message
            .Should().Contain("VM config");
    }

    [Fact]
    public void Extra_bytes_after_the_end_are_rejected()
    {
        File.WriteAllBytes(_dir.File("long.snap"), [.. _pristine, 0]);
        FluentActions.Invoking(() => SnapshotFile.Open(_dir.File("long.snap")))
            .Should().Throw<SnapshotFormatException>().WithMessage("*1 unexpected bytes after the end*");
    }

    [Fact]
    public void Corrupt_state_trailer_and_marker_fail_open()
    {
        OpenPatched(b => b[StateOffset + StateLength / 2] ^= 1, rehash: false).Message.Should().Contain("state section");
        OpenPatched(b => b[TrailerOffset + TrailerLength / 2] ^= 1, rehash: false).Message.Should().Contain("trailer");
        OpenPatched(b => b[TrailerOffset + TrailerLength - 1] ^= 1, rehash: false).Message.Should().Contain("trailer checksum");
        OpenPatched(b => b[^10] ^= 1, rehash: false).Message.Should().Contain("completion marker");
        OpenPatched(b => b[StateOffset + StateLength] = 1, rehash: false).Message.Should().Contain("after the state section");
        OpenPatched(b => b[HeaderLength + 3] = 1, rehash: false).Message.Should().Contain("after the header");
    }

    [Fact]
    public void Corrupt_page_is_caught_by_read_page_and_verify_naming_region_page_and_address()
    {
        int region = 1;
        long page = Enumerable.Range(0, 20).First(p => _scenario.Expected[1][p] is not null);
        var bytes = (byte[])_pristine.Clone();
        using (var good = SnapshotFile.Open(_path))
            bytes[good.RegionDataOffset(region) + page * 4096 + 1234] ^= 0x10;
        File.WriteAllBytes(_dir.File("page.snap"), bytes);
        using var file = SnapshotFile.Open(_dir.File("page.snap"));
        ulong gpa = 0x1_0000_0000UL + (ulong)page * 4096;
        FluentActions.Invoking(() => file.ReadPage(region, page, new byte[4096]))
            .Should().Throw<SnapshotFormatException>().WithMessage($"*page {page} of region 1 (guest address 0x{gpa:x})*checksum*");
        var buffer = new byte[4096];
        file.ReadPage(region, page, buffer, verifyChecksum: false); // the caller may opt out
        var result = file.Verify();
        result.IsValid.Should().BeFalse();
        result.ErrorCount.Should().Be(1);
        result.Errors[0].Should().Contain($"page {page} of region 1");
    }

    [Fact]
    public void Data_in_an_absent_page_or_padding_is_caught_by_verify()
    {
        long absent = Enumerable.Range(0, 48).First(p => _scenario.Expected[0][p] is null);
        var bytes = (byte[])_pristine.Clone();
        using (var good = SnapshotFile.Open(_path))
        {
            bytes[good.RegionDataOffset(0) + absent * 4096 + 7] = 0xEE;
            bytes[good.RegionDataOffset(0) + 48 * 4096 + 100] = 0xEE; // padding after region 0
            bytes[SnapshotFormat.HeaderAreaSize + 5] = 0xEE;            // padding before region 0
        }
        File.WriteAllBytes(_dir.File("absent.snap"), bytes);
        using var file = SnapshotFile.Open(_dir.File("absent.snap"));
        var buffer = new byte[4096];
        file.ReadPage(0, absent, buffer); // absent pages read as zeros
        buffer.Should().OnlyContain(b => b == 0);
        var result = file.Verify();
        result.ErrorCount.Should().Be(3);
        result.Errors.Should().Contain(e => e.Contains($"page {absent} of region 0") && e.Contains("absent but not zero"));
        result.Errors.Should().Contain(e => e.Contains("padding after region 0"));
        result.Errors.Should().Contain(e => e.Contains("padding after the header"));
    }

    private IEnumerable<long> Boundaries()
    {
        using var good = SnapshotFile.Open(_path);
        long[] points =
        [
            0, 1, 8, 15, 16, 17, 80, HeaderLength - 8, HeaderLength - 1, HeaderLength, SnapshotFormat.HeaderAreaSize,
            good.RegionDataOffset(0), good.RegionDataOffset(0) + 48 * 4096, good.RegionDataOffset(1),
            good.RegionDataOffset(1) + 4096, StateOffset, StateOffset + StateLength, TrailerOffset,
            TrailerOffset + TrailerLength, _pristine.Length - 16, _pristine.Length - 8,
        ];
        return points.SelectMany(p => new[] { p - 1, p, p + 1 }).Where(p => p >= 0 && p < _pristine.Length).Distinct();
    }

    [Fact]
    public void Truncation_at_every_boundary_and_random_offsets_is_a_clear_error()
    {
        var rng = new Random(42);
        var cuts = Boundaries().Concat(Enumerable.Range(0, 60).Select(_ => rng.NextInt64(_pristine.Length))).ToList();
        string path = _dir.File("cut.snap");
        File.WriteAllBytes(path, _pristine);
        foreach (long cut in cuts)
        {
            using (var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite)) RandomAccess.SetLength(h, cut);
            var e = FluentActions.Invoking(() => SnapshotFile.Open(path)).Should().Throw<SnapshotFormatException>($"cut at {cut}").Which;
            e.Message.Should().MatchRegex("truncated|empty|too short", $"cut at {cut}");
            Restore(path);
        }
    }

    private void Restore(string path)
    {
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.SetLength(h, 0);
        RandomAccess.SetLength(h, _pristine.Length);
        // Write back only the non-zero parts (the rest reads as zero from the hole).
        for (int at = 0; at < _pristine.Length; at += 4096)
        {
            var chunk = _pristine.AsSpan(at, Math.Min(4096, _pristine.Length - at));
            if (chunk.IndexOfAnyExcept((byte)0) >= 0) RandomAccess.Write(h, chunk, at);
        }
    }

    [Fact]
    public void Seeded_fuzz_of_300_mutations_is_always_detected_with_a_format_exception_or_verify_error()
    {
        var rng = new Random(20250101);
        string path = _dir.File("fuzz.snap");
        File.WriteAllBytes(path, _pristine);
        long[] zoneStarts;
        using (var good = SnapshotFile.Open(_path))
            zoneStarts = [0, HeaderLength, SnapshotFormat.HeaderAreaSize, good.RegionDataOffset(0), good.RegionDataOffset(1), StateOffset, TrailerOffset, _pristine.Length - 16];
        int openErrors = 0, verifyErrors = 0;
        for (int i = 0; i < 300; i++)
        {
            // Pick a zone first so small structures get hit as often as the big padding.
            int z = rng.Next(zoneStarts.Length);
            long start = zoneStarts[z], end = z + 1 < zoneStarts.Length ? zoneStarts[z + 1] : _pristine.Length;
            long at = start + rng.NextInt64(end - start);
            string what;
            using (var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
            {
                switch (rng.Next(3))
                {
                    case 0:
                        what = $"truncate to {at}";
                        RandomAccess.SetLength(h, at);
                        break;
                    case 1:
                    {
                        int bit = rng.Next(8);
                        what = $"flip bit {bit} at {at}";
                        RandomAccess.Write(h, new[] { (byte)(_pristine[at] ^ (1 << bit)) }, at);
                        break;
                    }
                    default:
                    {
                        int n = (int)Math.Min(1 + rng.Next(16), _pristine.Length - at);
                        var junk = new byte[n];
                        rng.NextBytes(junk);
                        junk[0] = (byte)(_pristine[at] ^ (1 + rng.Next(255)));
                        what = $"overwrite {n} bytes at {at}";
                        RandomAccess.Write(h, junk, at);
                        break;
                    }
                }
            }
            try
            {
                using var file = SnapshotFile.Open(path);
                var result = file.Verify();
                result.IsValid.Should().BeFalse($"mutation {i} ({what}) must not go unnoticed");
                result.Errors.Should().OnlyContain(e => e.Contains("snapshot '"));
                verifyErrors++;
            }
            catch (SnapshotFormatException e)
            {
                e.Message.Should().Contain("snapshot '", what);
                openErrors++;
            }
            Restore(path);
        }
        openErrors.Should().BeGreaterThan(100);
        verifyErrors.Should().BeGreaterThan(20);
        using (var restored = SnapshotFile.Open(path)) restored.Verify().IsValid.Should().BeTrue();
    }
}
