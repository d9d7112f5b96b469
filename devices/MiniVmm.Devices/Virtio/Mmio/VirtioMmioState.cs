using System.Collections.Immutable;

namespace MiniVmm.Devices.Virtio.Mmio;

/// <summary>One queue's registers and the device's ring positions at a snapshot.</summary>
public sealed record VirtioQueueState(ushort Size, bool Ready, ulong DescriptorTable, ulong AvailableRing, ulong UsedRing,
    ushort NextAvail, ushort NextUsed);

/// <summary>A virtio-mmio device at a snapshot: transport registers, negotiated features, queues, pending interrupt.</summary>
public sealed record VirtioMmioState(uint DeviceId, uint Status, bool NeedsReset, ulong DriverFeatures,
    uint DeviceFeaturesSel, uint DriverFeaturesSel, uint QueueSel, uint InterruptStatus, uint ConfigGeneration,
    ImmutableArray<VirtioQueueState> Queues);
