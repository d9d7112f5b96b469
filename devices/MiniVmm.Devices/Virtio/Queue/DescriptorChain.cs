using MiniVmm.Core.Memory;

namespace MiniVmm.Devices.Virtio.Queue;

/// <summary>One guest buffer of a chain, already checked to lie inside guest RAM.</summary>
public readonly record struct VirtqBuffer(GuestAddress Address, uint Length, bool DeviceWritable);

/// <summary>
/// A validated descriptor chain: the head index to return in the used ring and its buffers in order, the readable
/// ones (driver → device) first, then the writable ones (device → driver).
/// </summary>
/// <remarks>Each <see cref="SplitQueue"/> owns one and refills it on every pop, so taking a chain allocates nothing:
/// a chain is valid until the next <see cref="SplitQueue.TryPop"/> on its queue.</remarks>
public sealed class DescriptorChain
{
    private readonly VirtqBuffer[] _buffers;
    private int _count;

    /// <param name="capacity">The most buffers a chain of the owning queue can have.</param>
    internal DescriptorChain(int capacity) => _buffers = new VirtqBuffer[capacity];

    public ushort Head { get; private set; }
    public ArraySegment<VirtqBuffer> Buffers => new(_buffers, 0, _count);
    public int ReadableCount { get; private set; }
    public int WritableCount => _count - ReadableCount;
    public ulong ReadableBytes { get; private set; }
    public ulong WritableBytes { get; private set; }

    public ReadOnlySpan<VirtqBuffer> Readable => _buffers.AsSpan(0, ReadableCount);
    public ReadOnlySpan<VirtqBuffer> Writable => _buffers.AsSpan(ReadableCount, WritableCount);

    internal int Capacity => _buffers.Length;

    internal void Begin(ushort head)
    {
        Head = head;
        _count = 0;
        ReadableCount = 0;
        ReadableBytes = WritableBytes = 0;
    }

    /// <summary>Appends a buffer; the caller has checked the capacity, the order and the byte bound.</summary>
    internal void Add(VirtqBuffer buffer)
    {
        _buffers[_count++] = buffer;
        if (buffer.DeviceWritable)
        {
            WritableBytes += buffer.Length;
        }
        else
        {
            ReadableCount++;
            ReadableBytes += buffer.Length;
        }
    }
}
