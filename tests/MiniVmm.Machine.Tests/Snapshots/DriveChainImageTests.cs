using Microsoft.Win32.SafeHandles;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Machine.State;

namespace MiniVmm.Machine.Tests.Snapshots;

/// <summary>
/// A drive resolved from a chain's captures (a full base, then links of the blocks written since each parent), made the
/// way a running VM makes them: a change log on the drive and a capture per snapshot.
/// </summary>
public sealed class DriveChainImageTests : IDisposable
{
    private const int Block = 4096;          // a page: what the change log and a link's bitmap count
    private const int CaptureBlock = 16384;  // the capture's unit (hashes, copy-before-write): four pages
    private const int Length = 48 * Block + 512; // the last page and block are short
    private readonly string _dir = Directory.CreateTempSubdirectory("minivmm-drivechain-").FullName;
    private readonly List<(string SnapshotPath, IReadOnlyList<DriveRecord> Records)> _links = new(); // oldest first here
    private readonly List<byte[]> _contentAt = new();
    private ulong[]? _hashes;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>A snapshot of <paramref name="image"/> now: full the first time, then a link of what the log saw.</summary>
    private void Snapshot(RawImage image, DriveChangeLog log)
    {
        string snapshot = P($"s{_links.Count}.mvs");
        string copy = snapshot + ".drive0";
        using var target = File.OpenHandle(copy, FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(target, Length);
        var capture = new DriveCapture(image.File, Length, target, CaptureBlock);
        var changed = log.TakeAndReset();
        if (_hashes is not null) capture.LimitToChangedPages(_hashes, changed);
        capture.Start(CancellationToken.None);
        capture.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        capture.Error.Should().BeNull();
        _hashes = capture.BlockHashes();
        var record = new DriveRecord(0, Length, CaptureBlock, capture.Checksum, capture.BytesStored, Path.GetFileName(copy),
            capture.IsLink ? capture.StoredPages.ToArray() : null);
        _links.Add((snapshot, [record]));
        var content = new byte[Length];
        RandomAccess.Read(image.File, content, 0);
        _contentAt.Add(content);
    }

    /// <summary>The chain ending at link <paramref name="tip"/>, tip first.</summary>
    private List<(string, IReadOnlyList<DriveRecord>)> ChainTo(int tip) => [.. _links.Take(tip + 1).Reverse()];

    private RawImage BuildChainOfThree()
    {
        var bytes = new byte[Length];
        new Random(5).NextBytes(bytes);
        File.WriteAllBytes(P("drive.img"), bytes);
        var image = RawImage.Open(new DriveSpec(P("drive.img")));
        var log = new DriveChangeLog(Length);
        image.Changes = log;
        var rng = new Random(6);
        Snapshot(image, log);
        for (int link = 1; link <= 2; link++)
        {
            for (int i = 0; i < 6; i++)
            {
                var data = new byte[rng.Next(1, 2 * Block)];
                rng.NextBytes(data);
                image.Write(rng.Next(Length - data.Length), data);
            }
            image.Zero(47 * Block, Block, unmap: false);
            Snapshot(image, log);
        }
        return image;
    }

    private static byte[] ReadAll(SafeFileHandle f)
    {
        var bytes = new byte[RandomAccess.GetLength(f)];
        RandomAccess.Read(f, bytes, 0);
        return bytes;
    }

    [Fact]
    public void Each_link_resolves_to_the_drive_as_of_its_freeze()
    {
        using var image = BuildChainOfThree();
        _links[1].Records[0].IsLink.Should().BeTrue();
        _links[1].Records[0].BytesStored.Should().BeLessThan(Length / 2, "a link holds the changed pages only");
        _links[1].Records[0].BytesStored.Should().BeInRange(1, _links[1].Records[0].PagesHeld * Block,
            "a link stores the changed pages of a changed block, not the whole block");
        for (int tip = 0; tip < 3; tip++)
        {
            string output = P($"out{tip}.img");
            using (var target = File.OpenHandle(output, FileMode.CreateNew, FileAccess.ReadWrite))
            {
                RandomAccess.SetLength(target, Length);
                using var chain = DriveChainImage.Open(ChainTo(tip), 0);
                var (hashes, _) = chain.CopyTo(target, sparse: true);
                DriveChecksum.Combine(hashes).Should().Be(_links[tip].Records[0].Checksum);
            }
            File.ReadAllBytes(output).Should().Equal(_contentAt[tip], $"the chain to link {tip} is the drive at that freeze");
        }
    }

    [Fact]
    public void A_missing_damaged_or_unrelated_capture_is_refused_with_the_reason()
    {
        using var image = BuildChainOfThree();
        // A changed byte in a block the middle link holds: the tip's checksum no longer matches.
        var middle = _links[1].Records[0];
        long held = Enumerable.Range(0, (int)middle.PageCount).First(p => middle.HoldsPage(p) && !_links[2].Records[0].HoldsPage(p));
        string middleCopy = P(middle.File);
        using (var f = File.OpenHandle(middleCopy, FileMode.Open, FileAccess.ReadWrite))
        {
            var one = new byte[1];
            RandomAccess.Read(f, one, held * Block + 3);
            one[0] ^= 0xff;
            RandomAccess.Write(f, one, held * Block + 3);
        }
        using (var chain = DriveChainImage.Open(ChainTo(2), 0))
            FluentActions.Invoking(() => chain.CopyTo(null, sparse: false)).Should().Throw<StateRestoreException>().WithMessage("*does not match the checksum*");

        File.Delete(middleCopy);
        FluentActions.Invoking(() => DriveChainImage.Open(ChainTo(2), 0)).Should().Throw<StateRestoreException>().WithMessage("*cannot be opened*");

        var noRecord = ChainTo(2);
        noRecord[1] = (noRecord[1].Item1, []);
        FluentActions.Invoking(() => DriveChainImage.Open(noRecord, 0)).Should().Throw<StateRestoreException>().WithMessage("*has no capture of drive 0*");

        var onlyLinks = ChainTo(2).Take(1).ToList();
        FluentActions.Invoking(() => DriveChainImage.Open(onlyLinks, 0)).Should().Throw<StateRestoreException>().WithMessage("*full capture*");

        var resized = ChainTo(0);
        resized[0] = (resized[0].Item1, [resized[0].Item2[0] with { Length = Length - Block }]);
        FluentActions.Invoking(() => DriveChainImage.Open(resized, 0)).Should().Throw<StateRestoreException>().WithMessage("*bytes*recorded*");
    }

    [Fact]
    public void The_lineage_links_only_drives_whose_content_it_knows_and_gives_a_failed_links_blocks_back()
    {
        File.WriteAllBytes(P("d.img"), new byte[16 * 65536]);
        using var image = RawImage.Open(new DriveSpec(P("d.img")));
        var lineage = new DriveLineage();
        (int, RawImage)[] drives = [(0, image)];
        lineage.WhyNotLinkable(drives).Should().Contain("not known");
        lineage.TakeChanges(0, image).Should().BeNull("the first capture is full and starts the log");
        image.Changes.Should().NotBeNull();
        lineage.WhyNotLinkable(drives).Should().NotBeNull("the first capture is not committed yet");
        lineage.Committed(0, new ulong[16]);
        lineage.WhyNotLinkable(drives).Should().BeNull();
        image.Write(3 * 65536, new byte[1]);
        var taken = lineage.TakeChanges(0, image)!;
        BlockBits.Count(taken).Should().Be(1);
        lineage.Failed(0, taken);
        image.Changes!.Count.Should().Be(1, "the failed link's block is the next link's");

        var restored = new DriveLineage();
        restored.StartFromRestore(drives, new Dictionary<int, ulong[]> { [0] = new ulong[16] });
        restored.WhyNotLinkable(drives).Should().BeNull("restore checked the drive: its hashes are the parent's");
        var unchecked_ = new DriveLineage();
        unchecked_.StartFromRestore(drives, new Dictionary<int, ulong[]>());
        unchecked_.WhyNotLinkable(drives).Should().NotBeNull();
    }
}
