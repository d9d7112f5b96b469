using System.Buffers.Binary;
using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Devices.Virtio.Mmio;
using P = MiniVmm.Devices.Virtio.Block.VirtioBlockProtocol;

namespace MiniVmm.Devices.Tests.Virtio;

public sealed class VirtioBlockTests : IDisposable
{
    private const int ImageSectors = 64;
    private readonly string _dir = Directory.CreateTempSubdirectory("minivmm-blk-").FullName;
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(1 << 20);
    private readonly List<IDisposable> _owned = new();

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _memory.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string Image(string name = "disk.img", byte fill = 0)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, Enumerable.Repeat(fill, ImageSectors * 512).ToArray());
        return path;
    }

    private (VirtioBlock Device, MockMmioDriver Driver, MockQueue Queue) Start(string path, bool readOnly = false)
    {
        var image = RawImage.Open(new DriveSpec(path, readOnly));
        var blk = new VirtioBlock(image, "vda");
        _owned.Add(blk);
        var transport = new VirtioMmioTransport(blk, _memory, new RecordingInterruptLine());
        var driver = new MockMmioDriver(transport);
        var queue = new MockQueue(_memory, 64);
        driver.Bring_up(queue.Layout);
        return (blk, driver, queue);
    }

    /// <summary>The image's bytes through the device's own handle (the image is locked against other openers).</summary>
    private static byte[] ImageBytes(VirtioBlock blk)
    {
        var bytes = new byte[blk.Image.Length];
        RandomAccess.Read(blk.Image.File, bytes, 0);
        return bytes;
    }

    private static byte[] Header(uint type, ulong sector)
    {
        var h = new byte[P.HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), sector);
        return h;
    }

    /// <summary>Posts one request and returns its status byte and used length.</summary>
    private (byte Status, uint Used) Submit(MockMmioDriver driver, MockQueue queue, byte[] header,
        ReadOnlySpan<byte> outData = default, ulong inAddress = 0, uint inLength = 0, bool indirect = false)
    {
        ulong h = queue.AllocateWith(header);
        ulong status = queue.Allocate(1);
        _memory.Write(new GuestAddress(status), (byte)0xff);
        var buffers = new List<(ulong, uint, bool)> { (h, (uint)header.Length, false) };
        if (!outData.IsEmpty) buffers.Add((queue.AllocateWith(outData), (uint)outData.Length, false));
        if (inLength > 0) buffers.Add((inAddress, inLength, true));
        buffers.Add((status, 1, true));
        int before = queue.UsedIdx;
        if (indirect) queue.AddIndirectChain(buffers.ToArray()); else queue.AddChain(buffers.ToArray());
        driver.Notify();
        queue.WaitUsed(before + 1).Should().BeTrue();
        return (_memory.Read<byte>(new GuestAddress(status)), queue.Used(before).Length);
    }

    [Fact]
    public void Written_sectors_reach_the_image_and_read_back()
    {
        string path = Image();
        var (blk, driver, queue) = Start(path);
        var data = Enumerable.Range(0, 1024).Select(i => (byte)(i * 7 + 3)).ToArray();
        Submit(driver, queue, Header(P.TypeOut, 5), data).Status.Should().Be(P.StatusOk);

        ulong into = queue.Allocate(1024, 4096);
        var (status, used) = Submit(driver, queue, Header(P.TypeIn, 5), inAddress: into, inLength: 1024, indirect: true);
        status.Should().Be(P.StatusOk);
        used.Should().Be(1025);
        var back = new byte[1024];
        _memory.Read(new GuestAddress(into), back);
        back.Should().Equal(data);

        Submit(driver, queue, Header(P.TypeFlush, 0)).Status.Should().Be(P.StatusOk);
        ImageBytes(blk).AsSpan(5 * 512, 1024).ToArray().Should().Equal(data);
    }

    [Fact]
    public void Requests_past_the_end_or_of_partial_sectors_get_ioerr()
    {
        var (_, driver, queue) = Start(Image());
        ulong buf = queue.Allocate(1024);
        Submit(driver, queue, Header(P.TypeIn, ImageSectors - 1), inAddress: buf, inLength: 1024).Status.Should().Be(P.StatusIoErr);
        Submit(driver, queue, Header(P.TypeIn, ulong.MaxValue), inAddress: buf, inLength: 512).Status.Should().Be(P.StatusIoErr);
        Submit(driver, queue, Header(P.TypeOut, 0), new byte[100]).Status.Should().Be(P.StatusIoErr);
        Submit(driver, queue, Header(P.TypeIn, ImageSectors - 1), inAddress: buf, inLength: 512).Status.Should().Be(P.StatusOk);
    }

    [Fact]
    public void A_read_only_drive_refuses_writes_and_says_so_in_its_features()
    {
        string path = Image(fill: 0x5a);
        var (blk, driver, queue) = Start(path, readOnly: true);
        (blk.OfferedFeatures & P.FeatureReadOnly).Should().NotBe(0);
        (blk.OfferedFeatures & P.FeatureDiscard).Should().Be(0);
        Submit(driver, queue, Header(P.TypeOut, 0), new byte[512]).Status.Should().Be(P.StatusIoErr);
        var seg = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(seg.AsSpan(8), 1);
        Submit(driver, queue, Header(P.TypeWriteZeroes, 0), seg).Status.Should().Be(P.StatusIoErr);
        ImageBytes(blk).Should().OnlyContain(b => b == 0x5a);
    }

    [Fact]
    public void Get_id_returns_the_image_name_and_unknown_types_are_unsupported()
    {
        var (_, driver, queue) = Start(Image("serial-test.img"));
        ulong id = queue.Allocate(20);
        Submit(driver, queue, Header(P.TypeGetId, 0), inAddress: id, inLength: 20).Status.Should().Be(P.StatusOk);
        var bytes = new byte[20];
        _memory.Read(new GuestAddress(id), bytes);
        System.Text.Encoding.ASCII.GetString(bytes).TrimEnd('\0').Should().Be("serial-test.img");
        Submit(driver, queue, Header(99, 0)).Status.Should().Be(P.StatusUnsupported);
    }

    [Fact]
    public void Discard_and_write_zeroes_leave_zeros_and_reject_reserved_flags()
    {
        string path = Image(fill: 0xee);
        var (blk, driver, queue) = Start(path);
        var seg = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(seg, 2);
        BinaryPrimitives.WriteUInt32LittleEndian(seg.AsSpan(8), 3);
        Submit(driver, queue, Header(P.TypeWriteZeroes, 0), seg).Status.Should().Be(P.StatusOk);
        BinaryPrimitives.WriteUInt64LittleEndian(seg, 10);
        Submit(driver, queue, Header(P.TypeDiscard, 0), seg).Status.Should().Be(P.StatusOk);
        BinaryPrimitives.WriteUInt32LittleEndian(seg.AsSpan(12), P.SegmentFlagUnmap);
        Submit(driver, queue, Header(P.TypeDiscard, 0), seg).Status.Should().Be(P.StatusUnsupported, "unmap is reserved for discard");
        BinaryPrimitives.WriteUInt64LittleEndian(seg, ImageSectors - 1);
        Submit(driver, queue, Header(P.TypeWriteZeroes, 0), seg).Status.Should().Be(P.StatusIoErr, "past the end");

        var file = ImageBytes(blk);
        file.AsSpan(2 * 512, 3 * 512).ToArray().Should().OnlyContain(b => b == 0);
        file.AsSpan(10 * 512, 3 * 512).ToArray().Should().OnlyContain(b => b == 0);
        file.AsSpan(5 * 512, 5 * 512).ToArray().Should().OnlyContain(b => b == 0xee);
    }

    [Fact]
    public void A_chain_without_room_for_header_and_status_is_a_driver_error()
    {
        var (blk, driver, queue) = Start(Image());
        ulong a = queue.Allocate(8);
        queue.AddChain((a, 8, false), (a, 1, true));
        driver.Notify();
        SpinWait.SpinUntil(() => (driver.Read(VirtioMmioRegisters.Status) & VirtioStatus.DeviceNeedsReset) != 0,
            TimeSpan.FromSeconds(20)).Should().BeTrue();
        blk.IsActive.Should().BeFalse();
    }

    [Fact]
    public void Config_space_reports_capacity_and_limits()
    {
        var (blk, _, _) = Start(Image());
        Span<byte> config = stackalloc byte[P.ConfigSize];
        blk.ReadConfig(0, config);
        BinaryPrimitives.ReadUInt64LittleEndian(config).Should().Be(ImageSectors);
        BinaryPrimitives.ReadUInt32LittleEndian(config[P.ConfigBlkSize..]).Should().Be(512);
        BinaryPrimitives.ReadUInt32LittleEndian(config[P.ConfigSegMax..]).Should().Be(254);
        Span<byte> tail = stackalloc byte[4];
        blk.ReadConfig(P.ConfigSize - 2, tail);
        tail[2].Should().Be(0);
    }

    [Fact]
    public void A_second_writer_of_the_same_image_is_refused()
    {
        string path = Image();
        using var first = RawImage.Open(new DriveSpec(path));
        var second = () => RawImage.Open(new DriveSpec(path));
        second.Should().Throw<DriveException>().WithMessage($"*{path}*");
        var reader = () => RawImage.Open(new DriveSpec(path, ReadOnly: true));
        reader.Should().Throw<DriveException>();
    }

    [Fact]
    public void Read_only_openers_share_an_image()
    {
        string path = Image();
        using var a = RawImage.Open(new DriveSpec(path, ReadOnly: true));
        using var b = RawImage.Open(new DriveSpec(path, ReadOnly: true));
        var writer = () => RawImage.Open(new DriveSpec(path));
        writer.Should().Throw<DriveException>();
    }

    [Fact]
    public void Missing_image_and_directories_give_clear_errors()
    {
        var missing = () => RawImage.Open(new DriveSpec(Path.Combine(_dir, "nope.img")));
        missing.Should().Throw<DriveException>().WithMessage("*does not exist*");
        var dir = () => RawImage.Open(new DriveSpec(_dir));
        dir.Should().Throw<DriveException>().WithMessage("*directory*");
    }
}

public sealed class DriveSpecTests
{
    [Theory]
    [InlineData("file=/a/b.img", "/a/b.img", false, DriveCache.Writeback)]
    [InlineData("file=x.img,readonly=on", "x.img", true, DriveCache.Writeback)]
    [InlineData("readonly=off,file=x.img,cache=none", "x.img", false, DriveCache.None)]
    [InlineData("file=a,,b.img", "a,b.img", false, DriveCache.Writeback)]
    public void Parses_valid_options(string text, string path, bool readOnly, DriveCache cache)
    {
        DriveSpec.Parse(text).Should().Be(new DriveSpec(path, readOnly, cache));
    }

    [Theory]
    [InlineData("")]
    [InlineData("readonly=on")]
    [InlineData("file=")]
    [InlineData("file=a,file=b")]
    [InlineData("file=a,readonly=maybe")]
    [InlineData("file=a,cache=directsync")]
    [InlineData("file=a,if=virtio")]
    [InlineData("file=a,junk")]
    public void Rejects_bad_options_with_a_message(string text)
    {
        var act = () => DriveSpec.Parse(text);
        act.Should().Throw<FormatException>().Which.Message.Should().Contain("--drive");
    }
}
