namespace MiniVmm.Devices.Virtio.Queue;

/// <summary>One guest buffer of a chain, already checked to lie inside guest RAM.</summary>
public readonly record struct VirtqBuffer(ulong Address, uint Length, bool DeviceWritable);

/// <summary>
/// A validated descriptor chain: the head index to return in the used ring and its buffers in order, the readable
/// ones (driver → device) first, then the writable ones (device → driver).
/// </summary>
public sealed class DescriptorChain(ushort head, VirtqBuffer[] buffers, int readableCount, ulong readableBytes, ulong writableBytes)
{
    public ushort Head { get; } = head;
    public IReadOnlyList<VirtqBuffer> Buffers { get; } = buffers;
    public int ReadableCount { get; } = readableCount;
    public int WritableCount => Buffers.Count - ReadableCount;
    public ulong ReadableBytes { get; } = readableBytes;
    public ulong WritableBytes { get; } = writableBytes;

    public ReadOnlySpan<VirtqBuffer> Readable => buffers.AsSpan(0, ReadableCount);
    public ReadOnlySpan<VirtqBuffer> Writable => buffers.AsSpan(ReadableCount);
}
