namespace MiniVmm.Devices.Virtio.Mmio;

/// <summary>The virtio-mmio (version 2) register layout, virtio 1.2 §4.2.2. Registers are 32-bit.</summary>
public static class VirtioMmioRegisters
{
    public const uint MagicValue = 0x000;
    public const uint Version = 0x004;
    public const uint DeviceId = 0x008;
    public const uint VendorId = 0x00c;
    public const uint DeviceFeatures = 0x010;
    public const uint DeviceFeaturesSel = 0x014;
    public const uint DriverFeatures = 0x020;
    public const uint DriverFeaturesSel = 0x024;
    public const uint QueueSel = 0x030;
    public const uint QueueNumMax = 0x034;
    public const uint QueueNum = 0x038;
    public const uint QueueReady = 0x044;
    public const uint QueueNotify = 0x050;
    public const uint InterruptStatus = 0x060;
    public const uint InterruptAck = 0x064;
    public const uint Status = 0x070;
    public const uint QueueDescLow = 0x080;
    public const uint QueueDescHigh = 0x084;
    public const uint QueueDriverLow = 0x090;
    public const uint QueueDriverHigh = 0x094;
    public const uint QueueDeviceLow = 0x0a0;
    public const uint QueueDeviceHigh = 0x0a4;
    public const uint ShmSel = 0x0ac;
    public const uint ShmLenLow = 0x0b0;
    public const uint ShmLenHigh = 0x0b4;
    public const uint ShmBaseLow = 0x0b8;
    public const uint ShmBaseHigh = 0x0bc;
    public const uint ConfigGeneration = 0x0fc;
    public const uint Config = 0x100;

    /// <summary>"virt" in little-endian.</summary>
    public const uint Magic = 0x74726976;
    public const uint CurrentVersion = 2;
    /// <summary>MiniVmm's vendor ID ("MVMM").</summary>
    public const uint MiniVmmVendor = 0x4d4d564d;
    /// <summary>One 4 KiB page per device: registers and config space.</summary>
    public const ulong WindowSize = 0x1000;

    public const uint InterruptUsedBuffer = 1;
    public const uint InterruptConfigChange = 2;
}
