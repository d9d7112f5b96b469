using System.Buffers.Binary;
using System.Collections.Immutable;

namespace MiniVmm.Devices.Virtio.Mmio;

/// <summary>One queue's registers and the device's ring positions at a snapshot.</summary>
public sealed record VirtioQueueState(ushort Size, bool Ready, ulong DescriptorTable, ulong AvailableRing, ulong UsedRing,
    ushort NextAvail, ushort NextUsed);

/// <summary>A virtio-mmio device at a snapshot: transport registers, negotiated features, queues, pending interrupt and
/// the device's config space (compared, not loaded, on restore).</summary>
/// <remarks>Encoding, version 1, little endian: <c>u32 device id, u32 status, u8 needs-reset, u64 driver features,
/// u32 device-features-sel, u32 driver-features-sel, u32 queue-sel, u32 interrupt status, u32 config generation,
/// u16 queue count, per queue (u16 size, u8 ready, u64 desc, u64 driver, u64 device, u16 next avail, u16 next used),
/// u16 config length, config bytes</c>.</remarks>
public sealed record VirtioMmioState(uint DeviceId, uint Status, bool NeedsReset, ulong DriverFeatures,
    uint DeviceFeaturesSel, uint DriverFeaturesSel, uint QueueSel, uint InterruptStatus, uint ConfigGeneration,
    ImmutableArray<VirtioQueueState> Queues, ImmutableArray<byte> DeviceConfig = default)
{
    private const int HeadBytes = 4 + 4 + 1 + 8 + 4 + 4 + 4 + 4 + 4 + 2;
    private const int QueueBytes = 2 + 1 + 8 + 8 + 8 + 2 + 2;
    /// <summary>More queues than any device here has; bounds what a hostile file can make us allocate.</summary>
    private const int MaxQueues = 64;

    public byte[] Encode()
    {
        var config = DeviceConfig.IsDefault ? ImmutableArray<byte>.Empty : DeviceConfig;
        var data = new byte[HeadBytes + QueueBytes * Queues.Length + 2 + config.Length];
        var w = data.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(w, DeviceId);
        BinaryPrimitives.WriteUInt32LittleEndian(w[4..], Status);
        w[8] = (byte)(NeedsReset ? 1 : 0);
        BinaryPrimitives.WriteUInt64LittleEndian(w[9..], DriverFeatures);
        BinaryPrimitives.WriteUInt32LittleEndian(w[17..], DeviceFeaturesSel);
        BinaryPrimitives.WriteUInt32LittleEndian(w[21..], DriverFeaturesSel);
        BinaryPrimitives.WriteUInt32LittleEndian(w[25..], QueueSel);
        BinaryPrimitives.WriteUInt32LittleEndian(w[29..], InterruptStatus);
        BinaryPrimitives.WriteUInt32LittleEndian(w[33..], ConfigGeneration);
        BinaryPrimitives.WriteUInt16LittleEndian(w[37..], (ushort)Queues.Length);
        int at = HeadBytes;
        foreach (var q in Queues)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(w[at..], q.Size);
            w[at + 2] = (byte)(q.Ready ? 1 : 0);
            BinaryPrimitives.WriteUInt64LittleEndian(w[(at + 3)..], q.DescriptorTable);
            BinaryPrimitives.WriteUInt64LittleEndian(w[(at + 11)..], q.AvailableRing);
            BinaryPrimitives.WriteUInt64LittleEndian(w[(at + 19)..], q.UsedRing);
            BinaryPrimitives.WriteUInt16LittleEndian(w[(at + 27)..], q.NextAvail);
            BinaryPrimitives.WriteUInt16LittleEndian(w[(at + 29)..], q.NextUsed);
            at += QueueBytes;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(w[at..], (ushort)config.Length);
        config.AsSpan().CopyTo(w[(at + 2)..]);
        return data;
    }

    /// <exception cref="DeviceStateException">The bytes are truncated, too long or hold impossible flags.</exception>
    public static VirtioMmioState Decode(string device, ReadOnlySpan<byte> d)
    {
        if (d.Length < HeadBytes) throw new DeviceStateException(device, $"{d.Length} bytes is shorter than the {HeadBytes}-byte header");
        if (d[8] > 1) throw new DeviceStateException(device, $"needs-reset flag {d[8]} is neither 0 nor 1");
        int queues = BinaryPrimitives.ReadUInt16LittleEndian(d[37..]);
        if (queues > MaxQueues) throw new DeviceStateException(device, $"{queues} queues (at most {MaxQueues})");
        int configAt = HeadBytes + QueueBytes * queues;
        if (d.Length < configAt + 2) throw new DeviceStateException(device, $"{d.Length} bytes cannot hold {queues} queues");
        int configLength = BinaryPrimitives.ReadUInt16LittleEndian(d[configAt..]);
        if (d.Length != configAt + 2 + configLength)
            throw new DeviceStateException(device, $"{d.Length} bytes; {configAt + 2 + configLength} expected");
        var list = ImmutableArray.CreateBuilder<VirtioQueueState>(queues);
        for (int i = 0, at = HeadBytes; i < queues; i++, at += QueueBytes)
        {
            if (d[at + 2] > 1) throw new DeviceStateException(device, $"queue {i}: ready flag {d[at + 2]} is neither 0 nor 1");
            list.Add(new VirtioQueueState(BinaryPrimitives.ReadUInt16LittleEndian(d[at..]), d[at + 2] == 1,
                BinaryPrimitives.ReadUInt64LittleEndian(d[(at + 3)..]), BinaryPrimitives.ReadUInt64LittleEndian(d[(at + 11)..]),
                BinaryPrimitives.ReadUInt64LittleEndian(d[(at + 19)..]), BinaryPrimitives.ReadUInt16LittleEndian(d[(at + 27)..]),
                BinaryPrimitives.ReadUInt16LittleEndian(d[(at + 29)..])));
        }
        return new VirtioMmioState(BinaryPrimitives.ReadUInt32LittleEndian(d), BinaryPrimitives.ReadUInt32LittleEndian(d[4..]),
            d[8] == 1, BinaryPrimitives.ReadUInt64LittleEndian(d[9..]), BinaryPrimitives.ReadUInt32LittleEndian(d[17..]),
            BinaryPrimitives.ReadUInt32LittleEndian(d[21..]), BinaryPrimitives.ReadUInt32LittleEndian(d[25..]),
            BinaryPrimitives.ReadUInt32LittleEndian(d[29..]), BinaryPrimitives.ReadUInt32LittleEndian(d[33..]),
            list.MoveToImmutable(), ImmutableArray.Create(d.Slice(configAt + 2, configLength).ToArray()));
    }
}
