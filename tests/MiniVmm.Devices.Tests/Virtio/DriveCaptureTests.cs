using MiniVmm.Devices.Virtio.Block;
using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>Copy-before-write over plain files: the capture holds the drive as of its start, whatever was written after.</summary>
public sealed class DriveCaptureTests : IDisposable
{
    private const int Block = 4096; // small blocks: many of them in a small file
    private readonly string _dir = Directory.CreateTempSubdirectory("minivmm-capture-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (string Path, byte[] Content) Drive(int length, int seed, int zeroBlocksFrom = int.MaxValue)
    {
        var content = new byte[length];
        new Random(seed).NextBytes(content);
        for (int b = zeroBlocksFrom; (long)b * Block < length; b++)
            content.AsSpan(b * Block, Math.Min(Block, length - b * Block)).Clear();
        string path = Path.Combine(_dir, $"drive{seed}.img");
        File.WriteAllBytes(path, content);
        return (path, content);
    }

    private SafeFileHandle Target(string name, long length)
    {
        var handle = File.OpenHandle(Path.Combine(_dir, name), FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(handle, length);
        return handle;
    }

    /// <summary>Through the image's own handle: it holds the drive's exclusive lock.</summary>
    private static byte[] ReadAll(RawImage image)
    {
        var bytes = new byte[image.Length];
        RandomAccess.Read(image.File, bytes, 0);
        return bytes;
    }

    private static RawImage Open(string path) => RawImage.Open(new DriveSpec(path));

    [Fact]
    public void Writes_after_the_start_leave_the_capture_holding_the_content_at_the_start()
    {
        const int length = 64 * Block + 1000; // the last block is short
        var (path, original) = Drive(length, 1);
        using var image = Open(path);
        using var target = Target("cap", length);
        var capture = new DriveCapture(image.File, length, target, Block);
        image.Capture = capture;
        // The copier and the writer race: copy-before-write must win every block the writer touches first.
        var rng = new Random(2);
        var expectedDrive = (byte[])original.Clone();
        capture.Start(CancellationToken.None);
        for (int i = 0; i < 400; i++)
        {
            int offset = rng.Next(length - 10);
            int n = Math.Min(rng.Next(1, 3 * Block), length - offset);
            var data = new byte[n];
            rng.NextBytes(data);
            if (i % 10 == 0) { image.Zero(offset, n, unmap: false); Array.Clear(data); }
            else image.Write(offset, data);
            data.CopyTo(expectedDrive, offset);
        }
        capture.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        image.Capture = null;
        capture.Error.Should().BeNull();
        capture.BlocksDone.Should().Be(capture.BlockCount);

        File.ReadAllBytes(Path.Combine(_dir, "cap")).Should().Equal(original, "the capture is the drive at its start");
        ReadAll(image).Should().Equal(expectedDrive, "the writes themselves reached the drive");
        using var originalCopy = File.OpenHandle(Path.Combine(_dir, "cap"));
        capture.Checksum.Should().Be(DriveChecksum.Compute(originalCopy, length, Block));
    }

    [Fact]
    public void A_link_stores_only_the_changed_pages_and_still_records_the_whole_drives_checksum()
    {
        const int capture = 4 * Block;        // the capture's block: four pages
        const int length = 40 * capture;
        var (path, _) = Drive(length, 21);
        using var image = Open(path);
        // The parent's instant: a full capture, and the change log from then on.
        using var parentTarget = Target("parent", length);
        var parent = new DriveCapture(image.File, length, parentTarget, capture);
        parent.Start(CancellationToken.None);
        parent.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        var log = new DriveChangeLog(length);
        image.Changes = log;
        image.Write(3 * capture + 5, new byte[] { 1, 2, 3 });                        // page 12
        image.Write(17 * capture + Block, Enumerable.Repeat((byte)9, 2 * Block).ToArray()); // pages 69 and 70
        byte[] atLink = ReadAll(image);

        using var linkTarget = Target("link", length);
        var link = new DriveCapture(image.File, length, linkTarget, capture);
        link.LimitToChangedPages(parent.BlockHashes(), log.TakeAndReset());
        image.Capture = link;
        link.Start(CancellationToken.None);
        image.Write(30 * capture, new byte[10]);      // unchanged since the parent: the parent has it, nothing to copy
        image.Write(17 * capture + 1, new byte[10]);  // in a changed block: copied before this write, as the link's instant had it
        link.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        image.Capture = null;
        link.Error.Should().BeNull();
        link.IsLink.Should().BeTrue();
        link.BlocksDone.Should().Be(2, "blocks 3 and 17 hold the pages written since the parent");
        link.BytesStored.Should().Be(3 * Block, "of those blocks only the three written pages are stored");
        var stored = File.ReadAllBytes(Path.Combine(_dir, "link"));
        foreach (int p in new[] { 12, 69, 70 })
            stored.AsSpan(p * Block, Block).ToArray().Should().Equal(atLink.AsSpan(p * Block, Block).ToArray(), $"page {p} as of the link");
        stored.AsSpan(68 * Block, Block).ContainsAnyExcept((byte)0).Should().BeFalse("an unwritten page of a changed block is the parent's, not stored");
        stored.AsSpan(30 * capture, capture).ContainsAnyExcept((byte)0).Should().BeFalse("an unchanged block is not copied into a link");
        string atLinkPath = Path.Combine(_dir, "atlink.img");
        File.WriteAllBytes(atLinkPath, atLink);
        using var atLinkFile = File.OpenHandle(atLinkPath);
        link.Checksum.Should().Be(DriveChecksum.Compute(atLinkFile, length, capture), "the checksum is the whole drive's at the link's freeze");
        log.Count.Should().Be(2, "the writes after the link's freeze are the next link's");
    }

    [Fact]
    public void A_link_of_a_drive_nobody_wrote_completes_at_once()
    {
        const int length = 8 * Block;
        var (path, _) = Drive(length, 22);
        using var image = Open(path);
        using var target = Target("cap", length);
        var capture = new DriveCapture(image.File, length, target, Block);
        capture.LimitToChangedPages(new ulong[8], new ulong[1]);
        capture.Start(CancellationToken.None);
        capture.WaitCompleted(TimeSpan.FromSeconds(5)).Should().BeTrue();
        capture.BytesStored.Should().Be(0);
        FluentActions.Invoking(() => capture.LimitToChangedPages(new ulong[8], new ulong[1])).Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public void A_write_before_the_copier_gets_there_copies_its_blocks_first()
    {
        const int length = 16 * Block;
        var (path, original) = Drive(length, 3);
        using var image = Open(path);
        using var target = Target("cap", length);
        var capture = new DriveCapture(image.File, length, target, Block);
        image.Capture = capture;
        // Not started by Start (no copier): the writer path alone copies.
        capture.StartCopyBeforeWrite();
        image.Write(5 * Block + 100, new byte[2 * Block]); // touches blocks 5, 6 and 7
        capture.CopiedBeforeWrite.Should().Be(3);
        capture.BlocksDone.Should().Be(3);
        image.Write(5 * Block, new byte[10]); // already captured: no second copy
        capture.CopiedBeforeWrite.Should().Be(3);
        var cap = File.ReadAllBytes(Path.Combine(_dir, "cap"));
        cap.AsSpan(5 * Block, 3 * Block).ToArray().Should().Equal(original.AsSpan(5 * Block, 3 * Block).ToArray());
    }

    [Fact]
    public void Zero_blocks_are_holes_in_the_capture_and_cost_no_bytes()
    {
        const int length = 32 * Block;
        var (path, _) = Drive(length, 4, zeroBlocksFrom: 8);
        using var image = Open(path);
        using var target = Target("cap", length);
        var capture = new DriveCapture(image.File, length, target, Block);
        capture.Start(CancellationToken.None);
        capture.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        capture.Error.Should().BeNull();
        capture.BytesStored.Should().Be(8 * Block);
    }

    [Fact]
    public void Holes_the_host_reports_are_recorded_unread_and_a_write_into_one_still_captures_zeros()
    {
        const int length = 16 * Block;
        var (path, original) = Drive(length, 9, zeroBlocksFrom: 4);
        using var image = Open(path);
        using var target = Target("cap", length);
        var asked = new List<long>();
        // The host says: data only in the first 4 blocks.
        var capture = new DriveCapture(image.File, length, target, Block, offset => { lock (asked) asked.Add(offset); return offset < 4 * Block ? offset : long.MaxValue; });
        image.Capture = capture;
        capture.StartCopyBeforeWrite();
        image.Write(10 * Block, Enumerable.Repeat((byte)7, Block).ToArray()); // a hole written after the start
        capture.Start(CancellationToken.None);
        capture.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        capture.Error.Should().BeNull();
        asked.Should().NotBeEmpty();
        File.ReadAllBytes(Path.Combine(_dir, "cap")).Should().Equal(original);
        using var copy = File.OpenHandle(Path.Combine(_dir, "cap"));
        capture.Checksum.Should().Be(DriveChecksum.Compute(copy, length, Block), "a hole hashes as the zeros it reads as");
    }

    [Fact]
    public void Starting_twice_starts_one_copier()
    {
        const int length = 16 * Block;
        var (path, _) = Drive(length, 11, zeroBlocksFrom: 0);
        using var image = Open(path);
        using var target = Target("cap", length);
        int asked = 0;
        using var release = new ManualResetEventSlim();
        // Every copier asks where the data is before its first block; the first one waits here until the second Start.
        var capture = new DriveCapture(image.File, length, target, Block, _ =>
        {
            Interlocked.Increment(ref asked);
            release.Wait(TimeSpan.FromSeconds(20));
            return long.MaxValue;
        });
        capture.StartCopyBeforeWrite();
        capture.Start(CancellationToken.None);
        SpinWait.SpinUntil(() => Volatile.Read(ref asked) > 0, TimeSpan.FromSeconds(20)).Should().BeTrue();
        capture.Start(CancellationToken.None);
        capture.StartCopyBeforeWrite();
        Thread.Sleep(200); // the time a second copier would need to ask too
        Volatile.Read(ref asked).Should().Be(1, "a second Start is a no-op");
        release.Set();
        capture.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        capture.Error.Should().BeNull();
        capture.BlocksDone.Should().Be(capture.BlockCount);
    }

    [Fact]
    public void Zero_pages_inside_a_block_cost_no_bytes_either()
    {
        const int length = 4 * 65536;
        var content = new byte[length];
        content[65536 + 3 * 4096 + 17] = 1;     // one page of data in block 1
        content[3 * 65536 + 5] = 2;             // and one in block 3
        string path = Path.Combine(_dir, "sparse.img");
        File.WriteAllBytes(path, content);
        using var image = Open(path);
        using var target = Target("cap", length);
        var capture = new DriveCapture(image.File, length, target);
        capture.Start(CancellationToken.None);
        capture.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        capture.BytesStored.Should().Be(2 * 4096);
        target.Dispose();
        File.ReadAllBytes(Path.Combine(_dir, "cap")).Should().Equal(content);
    }

    [Fact]
    public void A_full_destination_fails_the_capture_and_the_guests_writes_still_reach_the_drive()
    {
        const int length = 16 * Block;
        var (path, _) = Drive(length, 5);
        using var image = Open(path);
        using var full = File.OpenHandle("/dev/full", FileMode.Open, FileAccess.Write); // every write: ENOSPC
        var capture = new DriveCapture(image.File, length, full, Block);
        image.Capture = capture;
        capture.Start(CancellationToken.None);
        capture.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        capture.Error.Should().BeAssignableTo<IOException>();
        var data = Enumerable.Repeat((byte)0x5a, Block).ToArray();
        image.Write(3 * Block, data); // no exception: the capture is over
        ReadAll(image).AsSpan(3 * Block, Block).ToArray().Should().Equal(data);
    }

    [Fact]
    public void Cancel_ends_the_capture_and_later_writes_copy_nothing()
    {
        const int length = 8 * Block;
        var (path, _) = Drive(length, 6);
        using var image = Open(path);
        using var target = Target("cap", length);
        var capture = new DriveCapture(image.File, length, target, Block);
        image.Capture = capture;
        capture.Cancel();
        capture.Start(CancellationToken.None);
        capture.WaitCompleted(TimeSpan.FromSeconds(30)).Should().BeTrue();
        capture.Error.Should().BeOfType<OperationCanceledException>();
        image.Write(0, new byte[Block]);
        capture.CopiedBeforeWrite.Should().Be(0);
    }

    [Fact]
    public void The_checksum_depends_on_content_and_position_only()
    {
        var (a, _) = Drive(10 * Block + 7, 7);
        var (b, _) = Drive(10 * Block + 7, 8);
        using var ha = File.OpenHandle(a);
        using var hb = File.OpenHandle(b);
        DriveChecksum.Compute(ha, 10 * Block + 7, Block).Should().Be(DriveChecksum.Compute(ha, 10 * Block + 7, Block));
        DriveChecksum.Compute(ha, 10 * Block + 7, Block).Should().NotBe(DriveChecksum.Compute(hb, 10 * Block + 7, Block));
        var act = () => DriveChecksum.Compute(ha, 11 * Block, Block);
        act.Should().Throw<IOException>("a file shorter than the recorded length is not the drive");
    }
}
