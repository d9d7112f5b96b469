namespace MiniVmm.Devices.Virtio;

/// <summary>Device-independent feature bits (virtio 1.2 §6) that MiniVmm's devices offer.</summary>
public static class VirtioFeatures
{
    public const ulong RingIndirectDesc = 1UL << 28;
    public const ulong RingEventIdx = 1UL << 29;
    public const ulong Version1 = 1UL << 32;

    /// <summary>Offered by every device on top of its own bits.</summary>
    public const ulong Common = RingIndirectDesc | RingEventIdx | Version1;
}

/// <summary>Device status bits (virtio 1.2 §2.1).</summary>
public static class VirtioStatus
{
    public const uint Acknowledge = 1;
    public const uint Driver = 2;
    public const uint DriverOk = 4;
    public const uint FeaturesOk = 8;
    public const uint DeviceNeedsReset = 0x40;
    public const uint Failed = 0x80;
    /// <summary>Every bit the driver may write.</summary>
    public const uint DriverWritable = Acknowledge | Driver | DriverOk | FeaturesOk | Failed;
}

/// <summary>Virtio device IDs (virtio 1.2 §5).</summary>
public static class VirtioDeviceId
{
    public const uint Network = 1;
    public const uint Block = 2;
    public const uint Entropy = 4;
}
