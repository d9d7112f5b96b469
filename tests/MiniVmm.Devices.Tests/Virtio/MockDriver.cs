using System.Buffers.Binary;
using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio;
using MiniVmm.Devices.Virtio.Mmio;
using MiniVmm.Devices.Virtio.Queue;
using R = MiniVmm.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>
/// The driver side of one split virtqueue, laid out in anonymous guest RAM: a descriptor table, available and used
/// rings, and a bump allocator for data buffers. Tests build chains (direct or indirect), publish them, and read what
/// the device put in the used ring.
/// </summary>
internal sealed class MockQueue
{
    public const ulong DescAddress = 0x1000, AvailAddress = 0x3000, UsedAddress = 0x4000, DataStart = 0x10000;

    private readonly GuestMemory _memory;
    private ushort _nextDesc;
    private ushort _availIdx;
    private readonly ulong _desc, _avail, _used;
    private ulong _nextData;

    /// <param name="areaOffset">Added to every address, so a device with several queues gets one area per queue.</param>
    public MockQueue(GuestMemory memory, ushort size, ulong areaOffset = 0)
    {
        _memory = memory;
        Size = size;
        _desc = DescAddress + areaOffset;
        _avail = AvailAddress + areaOffset;
        _used = UsedAddress + areaOffset;
        _nextData = DataStart + areaOffset;
        // Every MockQueue with one offset uses the same addresses: a driver hands a device zeroed rings, so must a second queue
        // built over a first one's (its avail.idx and descriptors would otherwise be served after a reset).
        memory.Clear(new GuestAddress(_desc), DataStart - DescAddress);
    }

    public ushort Size { get; }
    public QueueLayout Layout => new(Size, new GuestAddress(_desc), new GuestAddress(_avail), new GuestAddress(_used));
    public ushort AvailIdx => _availIdx;

    /// <summary>Reserves <paramref name="length"/> bytes of guest RAM (16-byte aligned) for a buffer.</summary>
    public ulong Allocate(uint length, ulong alignment = 16)
    {
        ulong at = (_nextData + alignment - 1) / alignment * alignment;
        _nextData = at + length;
        return at;
    }

    public ulong AllocateWith(ReadOnlySpan<byte> content)
    {
        ulong at = Allocate((uint)content.Length);
        _memory.Write(new GuestAddress(at), content);
        return at;
    }

    public void WriteDescriptor(ulong table, int index, ulong address, uint length, ushort flags, ushort next) =>
        _memory.Write(new GuestAddress(table + 16UL * (uint)index), new VirtqDescriptor { Address = address, Length = length, Flags = flags, Next = next });

    /// <summary>Writes a direct chain of <paramref name="buffers"/> into free descriptors and publishes it.</summary>
    public ushort AddChain(params (ulong Address, uint Length, bool Write)[] buffers)
    {
        ushort head = _nextDesc;
        for (int i = 0; i < buffers.Length; i++)
        {
            ushort index = (ushort)((head + i) % Size);
            ushort next = (ushort)((head + i + 1) % Size);
            ushort flags = (ushort)((buffers[i].Write ? VirtqDescriptor.FlagWrite : 0) | (i + 1 < buffers.Length ? VirtqDescriptor.FlagNext : 0));
            WriteDescriptor(_desc, index, buffers[i].Address, buffers[i].Length, flags, next);
        }
        _nextDesc = (ushort)((head + buffers.Length) % Size);
        Publish(head);
        return head;
    }

    /// <summary>Writes <paramref name="buffers"/> as an indirect table referenced by one descriptor and publishes it.</summary>
    public ushort AddIndirectChain(params (ulong Address, uint Length, bool Write)[] buffers)
    {
        ulong table = Allocate((uint)(16 * buffers.Length));
        for (int i = 0; i < buffers.Length; i++)
        {
            ushort flags = (ushort)((buffers[i].Write ? VirtqDescriptor.FlagWrite : 0) | (i + 1 < buffers.Length ? VirtqDescriptor.FlagNext : 0));
            WriteDescriptor(table, i, buffers[i].Address, buffers[i].Length, flags, (ushort)(i + 1));
        }
        ushort head = _nextDesc;
        WriteDescriptor(_desc, head, table, (uint)(16 * buffers.Length), VirtqDescriptor.FlagIndirect, 0);
        _nextDesc = (ushort)((head + 1) % Size);
        Publish(head);
        return head;
    }

    /// <summary>Puts <paramref name="head"/> in the next available slot and bumps avail.idx.</summary>
    public void Publish(ushort head)
    {
        _memory.Write(new GuestAddress(_avail + 4 + 2UL * (uint)(_availIdx % Size)), head);
        _availIdx++;
        _memory.Write(new GuestAddress(_avail + 2), _availIdx);
    }

    public void SetAvailIdx(ushort value)
    {
        _availIdx = value;
        _memory.Write(new GuestAddress(_avail + 2), value);
    }

    public void SetAvailFlags(ushort flags) => _memory.Write(new GuestAddress(_avail), flags);
    public void SetUsedEvent(ushort value) => _memory.Write(new GuestAddress(_avail + 4 + 2UL * Size), value);
    public ushort AvailEvent => _memory.Read<ushort>(new GuestAddress(_used + 4 + 8UL * Size));
    public ushort UsedIdx => _memory.Read<ushort>(new GuestAddress(_used + 2));
    public VirtqUsedElement Used(int i) => _memory.Read<VirtqUsedElement>(new GuestAddress(_used + 4 + 8UL * (uint)(i % Size)));

    /// <summary>Waits (generously; not a timing assertion) until the device has used <paramref name="count"/> chains.</summary>
    public bool WaitUsed(int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (UsedIdx >= count) return true;
            Thread.Sleep(1);
        }
        return false;
    }
}

/// <summary>A virtio-mmio driver over a transport, doing what Linux's virtio_mmio does at probe time.</summary>
internal sealed class MockMmioDriver(VirtioMmioTransport transport)
{
    public uint Read(uint offset)
    {
        Span<byte> b = stackalloc byte[4];
        transport.Read(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public void Write(uint offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        transport.Write(offset, b);
    }

    public ulong DeviceFeatures()
    {
        Write(R.DeviceFeaturesSel, 0);
        ulong low = Read(R.DeviceFeatures);
        Write(R.DeviceFeaturesSel, 1);
        return low | ((ulong)Read(R.DeviceFeatures) << 32);
    }

    /// <summary>Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true when the device accepted the features.</summary>
    public bool Negotiate(ulong features)
    {
        Write(R.Status, 0);
        Write(R.Status, VirtioStatus.Acknowledge);
        Write(R.Status, VirtioStatus.Acknowledge | VirtioStatus.Driver);
        Write(R.DriverFeaturesSel, 0);
        Write(R.DriverFeatures, (uint)features);
        Write(R.DriverFeaturesSel, 1);
        Write(R.DriverFeatures, (uint)(features >> 32));
        Write(R.Status, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
        return (Read(R.Status) & VirtioStatus.FeaturesOk) != 0;
    }

    public void SetupQueue(uint index, QueueLayout layout)
    {
        Write(R.QueueSel, index);
        Write(R.QueueNum, layout.Size);
        Write(R.QueueDescLow, (uint)layout.DescriptorTable.Value);
        Write(R.QueueDescHigh, (uint)(layout.DescriptorTable.Value >> 32));
        Write(R.QueueDriverLow, (uint)layout.AvailableRing.Value);
        Write(R.QueueDriverHigh, (uint)(layout.AvailableRing.Value >> 32));
        Write(R.QueueDeviceLow, (uint)layout.UsedRing.Value);
        Write(R.QueueDeviceHigh, (uint)(layout.UsedRing.Value >> 32));
        Write(R.QueueReady, 1);
    }

    public void DriverOk() =>
        Write(R.Status, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);

    /// <summary>The whole probe with every offered feature (or <paramref name="features"/>) and one queue.</summary>
    public void Bring_up(QueueLayout layout, ulong? features = null)
    {
        if (!Negotiate(features ?? DeviceFeatures())) throw new InvalidOperationException("features refused");
        SetupQueue(0, layout);
        DriverOk();
    }

    public void Notify(uint queue = 0) => Write(R.QueueNotify, queue);
}

/// <summary>Entropy that counts up, so tests can tell which bytes the device wrote.</summary>
internal sealed class CountingEntropy : MiniVmm.Devices.Virtio.Rng.IEntropySource
{
    private int _counter;
    public void Fill(Span<byte> destination)
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = (byte)(1 + _counter++ % 255);
    }
}
