using MiniVmm.Core.Memory;

namespace MiniVmm.Devices.Virtio.Queue;

/// <summary>
/// The device side of one split virtqueue (virtio 1.2 §2.7), written to distrust the driver: the rings were checked
/// against guest RAM when the queue was made ready (<see cref="QueueLayout.Check"/>), every descriptor and indirect
/// table is checked before use, an available index that runs more than the queue size ahead is refused, chains are
/// bounded (at most Size descriptors, an indirect table at most <see cref="MaxIndirectEntries"/>, never nested, at most
/// <see cref="MaxChainBytes"/> bytes) and readable buffers must precede writable ones. Any violation throws
/// <see cref="VirtqueueException"/>; no access ever leaves guest RAM.
/// </summary>
/// <remarks>Not thread-safe: one device worker owns it while the device is live. Taking a chain allocates nothing: the
/// queue refills its one <see cref="DescriptorChain"/>, sized for the longest chain the bounds allow.</remarks>
public sealed class SplitQueue
{
    public const int MaxIndirectEntries = 1024;
    public const ushort AvailNoInterrupt = 1;

    private readonly GuestMemory _memory;
    private readonly DescriptorChain _chain;
    private ushort _lastSignalledUsed;

    /// <param name="eventIndex">VIRTIO_F_EVENT_IDX was negotiated.</param>
    /// <param name="indirect">VIRTIO_F_INDIRECT_DESC was negotiated.</param>
    public SplitQueue(GuestMemory memory, QueueLayout layout, ushort maxSize, bool eventIndex, bool indirect,
        ushort nextAvail = 0, ushort nextUsed = 0, ulong maxChainBytes = 256UL << 20)
    {
        if (layout.Check(memory, maxSize) is { } problem) throw new VirtqueueException(problem);
        _memory = memory;
        Layout = layout;
        EventIndex = eventIndex;
        Indirect = indirect;
        NextAvail = nextAvail;
        NextUsed = nextUsed;
        _lastSignalledUsed = nextUsed;
        MaxChainBytes = maxChainBytes;
        // A direct chain holds at most Size descriptors; an indirect one at most Size - 1 direct ones before its table.
        _chain = new DescriptorChain(layout.Size + (indirect ? MaxIndirectEntries : 0));
    }

    public QueueLayout Layout { get; }
    public ushort Size => Layout.Size;
    public bool EventIndex { get; }
    public bool Indirect { get; }
    public ulong MaxChainBytes { get; }
    /// <summary>The next available-ring slot the device will read (free-running, wraps at 2^16).</summary>
    public ushort NextAvail { get; private set; }
    /// <summary>The next used-ring slot the device will write (free-running).</summary>
    public ushort NextUsed { get; private set; }

    private GuestAddress AvailIdxAddress => Layout.AvailableRing + 2;
    private GuestAddress UsedEventAddress => Layout.AvailableRing + 4 + 2UL * Size;
    private GuestAddress UsedIdxAddress => Layout.UsedRing + 2;
    private GuestAddress AvailEventAddress => Layout.UsedRing + 4 + (ulong)VirtqUsedElement.Size * Size;

    /// <summary>How many chains the driver has made available and the device has not taken yet.</summary>
    public int Pending()
    {
        ushort availIdx = _memory.Read<ushort>(AvailIdxAddress);
        int pending = (ushort)(availIdx - NextAvail);
        if (pending > Size)
            throw new VirtqueueException($"available index {availIdx} is {pending} entries ahead of {NextAvail}, more than the queue size {Size}");
        return pending;
    }

    /// <summary>Takes the next available chain (valid until the next call). False when there is none.</summary>
    /// <exception cref="VirtqueueException">The ring or the chain is malformed.</exception>
    public bool TryPop(out DescriptorChain chain)
    {
        chain = null!;
        if (Pending() == 0) return false;
        // The ring entry must be read after the index that published it.
        Interlocked.MemoryBarrier();
        ushort head = _memory.Read<ushort>(Layout.AvailableRing + 4 + 2UL * (uint)(NextAvail % Size));
        chain = ReadChain(head);
        NextAvail++;
        if (EventIndex)
        {
            // Ask to be notified when the driver goes past what the device has consumed.
            _memory.Write(AvailEventAddress, NextAvail);
        }
        return true;
    }

    /// <summary>Returns chain <paramref name="head"/> to the driver with <paramref name="written"/> bytes written.</summary>
    public void AddUsed(ushort head, uint written)
    {
        GuestAddress slot = Layout.UsedRing + 4 + (ulong)VirtqUsedElement.Size * (uint)(NextUsed % Size);
        _memory.Write(slot, new VirtqUsedElement { Id = head, Length = written });
        // The element must be visible before the index that publishes it.
        Interlocked.MemoryBarrier();
        NextUsed++;
        _memory.Write(UsedIdxAddress, NextUsed);
    }

    /// <summary>
    /// Whether the driver wants an interrupt for the used entries added since the last call: with EVENT_IDX when the
    /// used index passed the driver's used_event, otherwise unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT.
    /// </summary>
    public bool NeedsInterrupt()
    {
        // The used index store must be ordered before the load of the driver's suppression fields.
        Interlocked.MemoryBarrier();
        if (!EventIndex)
            return (_memory.Read<ushort>(Layout.AvailableRing) & AvailNoInterrupt) == 0;
        ushort usedEvent = _memory.Read<ushort>(UsedEventAddress);
        ushort old = _lastSignalledUsed;
        _lastSignalledUsed = NextUsed;
        // vring_need_event: the driver's event index lies in [old, new).
        return (ushort)(NextUsed - usedEvent - 1) < (ushort)(NextUsed - old);
    }

    private DescriptorChain ReadChain(ushort head)
    {
        if (head >= Size) throw new VirtqueueException($"chain head {head} is outside the descriptor table of {Size}");
        var chain = _chain;
        chain.Begin(head);
        GuestAddress table = Layout.DescriptorTable;
        uint tableEntries = Size;
        bool inIndirect = false;
        uint index = head;
        int ttl = Size;
        while (true)
        {
            if (ttl-- <= 0) throw new VirtqueueException($"chain at head {head} is longer than its table allows (a loop?)");
            var desc = _memory.Read<VirtqDescriptor>(table + (ulong)VirtqDescriptor.Size * index);
            if (desc.IsIndirect)
            {
                if (!Indirect) throw new VirtqueueException($"chain at head {head} uses an indirect table, which was not negotiated");
                if (inIndirect) throw new VirtqueueException($"chain at head {head} nests an indirect table");
                if (desc.HasNext) throw new VirtqueueException($"chain at head {head}: an indirect descriptor also has NEXT");
                if (desc.Length == 0 || desc.Length % VirtqDescriptor.Size != 0 || desc.Length / VirtqDescriptor.Size > MaxIndirectEntries)
                    throw new VirtqueueException($"chain at head {head}: indirect table length {desc.Length} is not 1..{MaxIndirectEntries} descriptors");
                // No alignment is required (virtio 1.2 §2.7.5.3 sets none): Linux's virtio_ring kmallocs indirect
                // tables, 8-byte aligned, and descriptors are read unaligned-safe.
                if (!_memory.Contains(new GuestAddress(desc.Address), desc.Length))
                    throw new VirtqueueException($"chain at head {head}: indirect table 0x{desc.Address:x}+0x{desc.Length:x} is outside guest RAM");
                table = new GuestAddress(desc.Address);
                tableEntries = desc.Length / VirtqDescriptor.Size;
                inIndirect = true;
                index = 0;
                ttl = (int)tableEntries;
                continue;
            }
            if (!_memory.Contains(new GuestAddress(desc.Address), desc.Length))
                throw new VirtqueueException($"chain at head {head}: buffer 0x{desc.Address:x}+0x{desc.Length:x} is outside guest RAM");
            if (!desc.IsWriteOnly && chain.WritableCount > 0)
                throw new VirtqueueException($"chain at head {head}: a readable buffer follows a writable one");
            if (chain.ReadableBytes + chain.WritableBytes + desc.Length > MaxChainBytes)
                throw new VirtqueueException($"chain at head {head} is larger than {MaxChainBytes} bytes");
            if (chain.Buffers.Count == chain.Capacity)
                throw new VirtqueueException($"chain at head {head} has more than {chain.Capacity} buffers");
            chain.Add(new VirtqBuffer(new GuestAddress(desc.Address), desc.Length, desc.IsWriteOnly));
            if (!desc.HasNext) break;
            if (desc.Next >= tableEntries) throw new VirtqueueException($"chain at head {head}: next index {desc.Next} is outside its table of {tableEntries}");
            index = desc.Next;
        }
        return chain;
    }
}
