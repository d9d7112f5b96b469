using KvmSharp;
using System.Globalization;
using System.IO.Hashing;
using System.Text;

namespace MiniVmm.Snapshot.Format;

public sealed partial class SnapshotFile
{
    private const int MaxVerifyMessages = 100;
    private const int VerifyChunkPages = 256;

    public int RegionCount => _header.Info.Regions.Count;

    public bool IsPresent(int region, long page)
    {
        CheckPage(region, page);
        return IsPresentUnchecked(region, page);
    }

    private bool IsPresentUnchecked(int region, long page) => ((_bitmaps[region][page >> 6] >> (int)(page & 63)) & 1) != 0;

    /// <summary>Word <paramref name="word"/> of a region's present bitmap (pages 64*word onwards; bulk scans).</summary>
    internal ulong PresentWord(int region, long word) => _bitmaps[region][word];

    public long PresentPages(int region)
    {
        CheckRegion(region);
        return _present[region];
    }

    /// <summary>File offset of region <paramref name="region"/>'s page area (page i at offset + i * 4096), page-aligned for mmap.</summary>
    public long RegionDataOffset(int region)
    {
        CheckRegion(region);
        return _header.RegionOffsets[region];
    }

    /// <summary>The recorded XXH3-64 of a present page (0 for an absent one).</summary>
    public ulong PageChecksum(int region, long page)
    {
        CheckPage(region, page);
        return _checksums[region][page];
    }

    /// <summary>Reads one page; absent pages read as zeros. A checksum mismatch is a <see cref="SnapshotFormatException"/>.</summary>
    public void ReadPage(int region, long page, Span<byte> destination, bool verifyChecksum = true)
    {
        CheckPage(region, page);
        if (destination.Length < SnapshotFormat.PageSize)
            throw new ArgumentException($"the destination must hold {SnapshotFormat.PageSize} bytes", nameof(destination));
        ReadPages(region, page, destination[..SnapshotFormat.PageSize], verifyChecksum);
    }

    /// <summary>Reads <c>destination.Length / 4096</c> consecutive pages with one pread; absent pages read as zeros.</summary>
    public void ReadPages(int region, long firstPage, Span<byte> destination, bool verifyChecksum = true)
    {
        CheckRegion(region);
        if (destination.Length % SnapshotFormat.PageSize != 0)
            throw new ArgumentException($"the destination length is not a multiple of {SnapshotFormat.PageSize}", nameof(destination));
        long count = destination.Length / SnapshotFormat.PageSize;
        long pages = _header.Info.Regions[region].PageCount;
        if (firstPage < 0 || firstPage > pages || count > pages - firstPage)
            throw new ArgumentOutOfRangeException(nameof(firstPage), firstPage, $"pages {firstPage}..{firstPage + count} are outside region {region} ({pages} pages)");
        if (!AnyPresent(region, firstPage, count))
        {
            destination.Clear();
            return;
        }
        long offset = _header.RegionOffsets[region] + firstPage * SnapshotFormat.PageSize;
        ReadExactly(_handle, destination, offset, _what, $"region {region} pages {firstPage}..{firstPage + count}");
        for (int i = 0; i < count; i++)
        {
            long p = firstPage + i;
            var page = destination.Slice(i * SnapshotFormat.PageSize, SnapshotFormat.PageSize);
            if (!IsPresentUnchecked(region, p)) page.Clear();
            else if (verifyChecksum && XxHash3.HashToUInt64(page) != _checksums[region][p])
                throw new SnapshotFormatException(ChecksumMismatch(region, p));
        }
    }

    private bool AnyPresent(int region, long firstPage, long count)
    {
        for (long p = firstPage; p < firstPage + count; p++)
            if (IsPresentUnchecked(region, p)) return true;
        return false;
    }

    private string ChecksumMismatch(int region, long page) =>
        $"{_what} is corrupt: page {page} of region {region} (guest address 0x{GuestAddress(region, page):x}) does not match its checksum";

    private ulong GuestAddress(int region, long page) =>
        _header.Info.Regions[region].GuestAddress + (ulong)page * SnapshotFormat.PageSize;

    /// <summary>
    /// Reads the whole memory area: every present page must match its checksum, every absent page and every padding
    /// byte must be zero. Header, state and trailer were already checked by <see cref="Open"/>.
    /// </summary>
    public VerifyResult Verify(IProgress<double>? progress = null)
    {
        var regions = _header.Info.Regions;
        long total = regions.Sum(r => (long)r.Size) + _padding.Sum(p => p.Length);
        long done = 0, present = 0, absent = 0, errorCount = 0, bytesRead = 0;
        double reported = -1;
        var errors = new List<string>();
        var buffer = new byte[VerifyChunkPages * SnapshotFormat.PageSize];

        void Error(string message)
        {
            errorCount++;
            if (errors.Count < MaxVerifyMessages) errors.Add(message);
        }
        void Advance(long bytes)
        {
            done += bytes;
            double fraction = total == 0 ? 1 : (double)done / total;
            if (progress is not null && (fraction - reported >= 0.005 || done == total))
            {
                reported = fraction;
                progress.Report(fraction);
            }
        }
        int Read(Span<byte> span, long offset)
        {
            bytesRead += span.Length;
            int got = 0;
            while (got < span.Length)
            {
                int n = _handle.Read(span[got..], offset + got);
                if (n <= 0) break;
                got += n;
            }
            return got;
        }

        // Holes read as zeros by definition: skip ranges that lseek(SEEK_DATA) says hold no data.
        long queriedAt = long.MaxValue, nextData = -1; // no data in [queriedAt, nextData)
        bool IsHole(long offset, long length)
        {
            if (offset < queriedAt || offset > nextData)
            {
                queriedAt = offset;
                // Only a local file has holes to ask about; any other source reads (and checks) every byte.
                nextData = _handle is FileSnapshotBytes local ? HostIo.NextData(local.Handle, offset) : offset;
            }
            return nextData >= offset + length;
        }

        for (int g = 0; g < regions.Count; g++)
        {
            long pages = regions[g].PageCount;
            // Runs of pages that are all present or all absent, at most one buffer long.
            for (long first = 0; first < pages;)
            {
                bool isPresent = IsPresentUnchecked(g, first);
                int n = 1;
                while (n < VerifyChunkPages && first + n < pages && IsPresentUnchecked(g, first + n) == isPresent) n++;
                var span = buffer.AsSpan(0, n * SnapshotFormat.PageSize);
                long offset = _header.RegionOffsets[g] + first * SnapshotFormat.PageSize;
                if (isPresent) present += n;
                else absent += n;
                if (isPresent || !IsHole(offset, span.Length))
                {
                    int got = Read(span, offset);
                    for (int i = 0; i < n; i++)
                    {
                        long p = first + i;
                        if ((i + 1) * SnapshotFormat.PageSize > got)
                        {
                            Error($"{_what} is truncated: page {p} of region {g} (file offset {offset + (long)i * SnapshotFormat.PageSize}) cannot be read");
                            break;
                        }
                        var page = span.Slice(i * SnapshotFormat.PageSize, SnapshotFormat.PageSize);
                        if (isPresent)
                        {
                            if (XxHash3.HashToUInt64(page) != _checksums[g][p]) Error(ChecksumMismatch(g, p));
                        }
                        else if (page.IndexOfAnyExcept((byte)0) >= 0)
                        {
                            Error($"{_what} is corrupt: page {p} of region {g} (guest address 0x{GuestAddress(g, p):x}) is absent but not zero in the file");
                        }
                    }
                }
                Advance(span.Length);
                first += n;
            }
        }

        foreach (var (start, length, what) in _padding)
        {
            for (long at = 0; at < length; at += buffer.Length)
            {
                var span = buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - at));
                if (IsHole(start + at, span.Length))
                {
                    Advance(span.Length);
                    continue;
                }
                int got = Read(span, start + at);
                if (got < span.Length)
                {
                    Error($"{_what} is truncated: {what} at offset {start + at + got} cannot be read");
                    break;
                }
                int nz = span.IndexOfAnyExcept((byte)0);
                if (nz >= 0)
                {
                    Error($"{_what} is corrupt: non-zero byte at file offset {start + at + nz} in the {what}");
                    break;
                }
                Advance(span.Length);
            }
        }
        if (progress is not null && reported < 1) progress.Report(1);
        return new VerifyResult(present, absent, bytesRead, errorCount, errors);
    }

    /// <summary>Human-readable summary for <c>minivmm snapshot inspect</c>.</summary>
    public string Describe()
    {
        var inv = CultureInfo.InvariantCulture;
        var info = _header.Info;
        var sb = new StringBuilder();
        long memory = info.Regions.Sum(r => (long)r.Size);
        long presentPages = _present.Sum();
        sb.AppendLine(inv, $"MiniVmm snapshot {Path}");
        sb.AppendLine(inv, $"  format      {FormatVersion} (file form, complete)");
        sb.AppendLine(inv, $"  snapshot id {SnapshotId}");
        sb.AppendLine(Parent is { } parent
            ? string.Create(inv, $"  parent      {parent} (incremental link: absent pages are the parent's)")
            : "  parent      none (full snapshot)");
        sb.AppendLine(inv, $"  engine      {info.Engine}");
        sb.AppendLine(inv, $"  created     {CreatedAt.ToString("yyyy-MM-dd HH:mm:ss.fff", inv)} UTC");
        sb.AppendLine(inv, $"  host CPU    {info.HostCpuModel}");
        sb.AppendLine(inv, $"  file size   {FileLength} bytes ({Size(FileLength)}; page data {Size(presentPages * SnapshotFormat.PageSize)})");
        string absent = IsIncremental ? "from the parent" : "zero (holes)";
        sb.AppendLine(inv, $"  memory      {info.Regions.Count} region(s), {Size(memory)}, {presentPages} pages present, "
                           + $"{memory / SnapshotFormat.PageSize - presentPages} {absent}");
        for (int g = 0; g < info.Regions.Count; g++)
        {
            var r = info.Regions[g];
            sb.AppendLine(inv, $"    [{g}] guest 0x{r.GuestAddress:x}..0x{r.GuestAddress + r.Size:x} ({Size((long)r.Size)}), "
                               + $"{r.PageCount} pages, {_present[g]} present, data at file offset 0x{_header.RegionOffsets[g]:x}");
        }
        sb.AppendLine(inv, $"  state       {Sections.Count} section(s), {StateLength} bytes at file offset 0x{_header.StateOffset:x}");
        foreach (var s in Sections) sb.AppendLine(inv, $"    {s.Id} v{s.Version}: {s.Data.Length} bytes");
        sb.AppendLine(inv, $"  trailer     {TrailerLength} bytes at file offset 0x{_header.TrailerOffset:x}");
        string config = info.VmConfig.ReplaceLineEndings(" ");
        if (config.Length > 400) config = config[..400] + "…";
        sb.AppendLine(inv, $"  VM config   {config}");
        return sb.ToString();
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.##} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.##} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.##} KiB"),
        _ => $"{bytes} B",
    };

    private void CheckRegion(int region)
    {
        if ((uint)region >= (uint)_header.Info.Regions.Count)
            throw new ArgumentOutOfRangeException(nameof(region), region, $"the snapshot has {_header.Info.Regions.Count} regions");
    }

    private void CheckPage(int region, long page)
    {
        CheckRegion(region);
        long pages = _header.Info.Regions[region].PageCount;
        if ((ulong)page >= (ulong)pages)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"region {region} has {pages} pages");
    }

    public void Dispose() => _handle.Dispose();
}
