using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio.Queue;
using P = MiniVmm.Devices.Virtio.Block.VirtioBlockProtocol;

namespace MiniVmm.Devices.Virtio.Block;

/// <summary>
/// virtio-blk on a raw image (virtio 1.2 §5.2): read, write, flush, get-id, discard and write-zeroes on one request
/// queue, served by the device's worker thread straight between the image and guest RAM. A request the device cannot
/// honour (out of range, misaligned, a write to a read-only drive, a host I/O error) gets VIRTIO_BLK_S_IOERR; an
/// unknown type VIRTIO_BLK_S_UNSUPP; a chain too short to hold a header and a status byte is a driver error.
/// </summary>
public sealed class VirtioBlock : VirtioDevice
{
    /// <summary>Sectors per discard / write-zeroes segment the device accepts (128 MiB).</summary>
    public const uint MaxZeroSectors = 1u << 18;

    private readonly RawImage _image;
    private readonly byte[] _config = new byte[P.ConfigSize];
    private readonly byte[] _id = new byte[P.IdBytes];
    private readonly RateLimitedLog _log;
    private readonly string _name;

    public VirtioBlock(RawImage image, string name = "virtio-blk", IVirtioDoorbell? doorbell = null, ILogger? logger = null,
        bool startPaused = false)
        : base(doorbell, startPaused)
    {
        _image = image;
        _name = name;
        _log = new RateLimitedLog(logger ?? NullLogger.Instance);
        var c = _config.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(c[P.ConfigCapacity..], image.Sectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[P.ConfigSegMax..], (uint)(MaxQueueSize - 2));
        BinaryPrimitives.WriteUInt32LittleEndian(c[P.ConfigBlkSize..], RawImage.SectorSize);
        BinaryPrimitives.WriteUInt32LittleEndian(c[P.ConfigMaxDiscardSectors..], MaxZeroSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[P.ConfigMaxDiscardSeg..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(c[P.ConfigDiscardSectorAlignment..], 8);
        BinaryPrimitives.WriteUInt32LittleEndian(c[P.ConfigMaxWriteZeroesSectors..], MaxZeroSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[P.ConfigMaxWriteZeroesSeg..], 1);
        c[P.ConfigWriteZeroesMayUnmap] = 1;
        var serial = System.Text.Encoding.ASCII.GetBytes(Path.GetFileName(image.Path));
        serial.AsSpan(0, Math.Min(serial.Length, P.IdBytes)).CopyTo(_id);
    }

    public RawImage Image => _image;
    public override uint DeviceId => VirtioDeviceId.Block;
    public override string Name => _name;
    public override int QueueCount => 1;

    protected override ulong DeviceFeatures =>
        P.FeatureSegMax | P.FeatureBlkSize | P.FeatureFlush |
        (_image.ReadOnly ? P.FeatureReadOnly : P.FeatureDiscard | P.FeatureWriteZeroes);

    public override byte[] ConfigSnapshot() => (byte[])_config.Clone();

    public override void ReadConfig(uint offset, Span<byte> data)
    {
        data.Clear();
        if (offset >= _config.Length) return;
        int n = Math.Min(data.Length, _config.Length - (int)offset);
        _config.AsSpan((int)offset, n).CopyTo(data);
    }

    protected override uint Handle(int queueIndex, DescriptorChain chain, GuestMemory memory)
    {
        if (chain.ReadableBytes < P.HeaderSize || chain.WritableBytes < 1)
            throw new VirtqueueException($"block request at head {chain.Head} has {chain.ReadableBytes} readable and {chain.WritableBytes} writable bytes: no room for header and status");
        Span<byte> header = stackalloc byte[P.HeaderSize];
        ChainIo.Read(memory, chain, 0, header);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        ulong dataIn = chain.WritableBytes - 1;      // bytes the device may write before the status byte
        ulong dataOut = chain.ReadableBytes - P.HeaderSize;
        uint written = 0;
        byte status;
        try
        {
            switch (type)
            {
                case P.TypeIn:
                    status = CheckRange(sector, dataIn, "read");
                    if (status == P.StatusOk) { Transfer(memory, chain, sector, dataIn, toGuest: true); written = (uint)dataIn; }
                    break;
                case P.TypeOut:
                    status = _image.ReadOnly ? Refuse("write to a read-only drive") : CheckRange(sector, dataOut, "write");
                    if (status == P.StatusOk) Transfer(memory, chain, sector, dataOut, toGuest: false);
                    break;
                case P.TypeFlush:
                    _image.Flush();
                    status = P.StatusOk;
                    break;
                case P.TypeGetId:
                    written = (uint)ChainIo.Write(memory, chain, 0, _id.AsSpan(0, (int)Math.Min(dataIn, P.IdBytes)));
                    status = P.StatusOk;
                    break;
                case P.TypeDiscard or P.TypeWriteZeroes:
                    status = _image.ReadOnly ? Refuse("discard or write-zeroes on a read-only drive") : Zero(memory, chain, dataOut, type == P.TypeDiscard);
                    break;
                default:
                    status = P.StatusUnsupported;
                    break;
            }
        }
        catch (IOException e)
        {
            _log.Warn(Name, $"host I/O error on {_image.Path}: {e.Message}");
            status = P.StatusIoErr;
        }
        ChainIo.Write(memory, chain, chain.WritableBytes - 1, [status]);
        return written + 1;
    }

    private byte Refuse(string what)
    {
        _log.Warn(Name, $"refused a {what}");
        return P.StatusIoErr;
    }

    private byte CheckRange(ulong sector, ulong bytes, string what)
    {
        if (bytes % RawImage.SectorSize != 0) return Refuse($"{what} of {bytes} bytes (not whole sectors)");
        ulong sectors = bytes / RawImage.SectorSize;
        if (sector > _image.Sectors || sectors > _image.Sectors - sector)
            return Refuse($"{what} of {sectors} sectors at {sector}, past the end ({_image.Sectors} sectors)");
        return P.StatusOk;
    }

    /// <summary>Moves <paramref name="bytes"/> between the image at <paramref name="sector"/> and the chain's data
    /// buffers, straight into or out of guest RAM.</summary>
    private void Transfer(GuestMemory memory, DescriptorChain chain, ulong sector, ulong bytes, bool toGuest)
    {
        long fileOffset = (long)(sector * RawImage.SectorSize);
        ulong skip = toGuest ? 0 : (ulong)P.HeaderSize;
        foreach (var b in toGuest ? chain.Writable : chain.Readable)
        {
            if (bytes == 0) break;
            if (skip >= b.Length) { skip -= b.Length; continue; }
            GuestAddress gpa = b.Address + skip;
            ulong length = Math.Min(b.Length - skip, bytes);
            skip = 0;
            while (length > 0)
            {
                int n = (int)Math.Min(length, 1UL << 20);
                if (!memory.TryFind(gpa, (ulong)n, out var region, out ulong regionOffset))
                    throw new VirtqueueException($"buffer {gpa}+0x{n:x} left guest RAM");
                memory.PrepareHostAccess(gpa, (ulong)n, write: toGuest);
                var span = region.GetSpan(regionOffset, n);
                bool aligned = gpa.IsAligned(RawImage.DirectAlignment);
                if (toGuest)
                {
                    int got = _image.Read(fileOffset, span, aligned);
                    if (got < n) span[got..].Clear(); // cannot happen within the checked range; never leak stale RAM
                    memory.NoteHostWrite(gpa, (ulong)n);
                }
                else
                {
                    _image.Write(fileOffset, span, aligned);
                }
                fileOffset += n;
                gpa += (ulong)n;
                length -= (ulong)n;
                bytes -= (ulong)n;
            }
        }
    }

    private byte Zero(GuestMemory memory, DescriptorChain chain, ulong payload, bool discard)
    {
        if (payload != P.SegmentSize) return Refuse($"{(discard ? "discard" : "write-zeroes")} with {payload} payload bytes (one 16-byte segment supported)");
        Span<byte> seg = stackalloc byte[P.SegmentSize];
        ChainIo.Read(memory, chain, P.HeaderSize, seg);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(seg);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(seg[8..]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(seg[12..]);
        if (discard ? flags != 0 : (flags & ~P.SegmentFlagUnmap) != 0) return P.StatusUnsupported;
        if (count > MaxZeroSectors) return Refuse($"zeroing {count} sectors (at most {MaxZeroSectors})");
        byte range = CheckRange(sector, (ulong)count * RawImage.SectorSize, discard ? "discard" : "write-zeroes");
        if (range != P.StatusOk) return range;
        // Discarded sectors read as zeros too: simpler for the guest and what a punched hole gives anyway.
        _image.Zero((long)(sector * RawImage.SectorSize), (long)count * RawImage.SectorSize, unmap: discard || (flags & P.SegmentFlagUnmap) != 0);
        return P.StatusOk;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _image.Dispose();
        base.Dispose(disposing);
    }
}
