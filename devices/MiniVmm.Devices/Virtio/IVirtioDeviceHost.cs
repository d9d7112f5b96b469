using MiniVmm.Core.Memory;

namespace MiniVmm.Devices.Virtio;

/// <summary>What a transport gives a live device: guest RAM and the two ways to reach the driver.</summary>
public interface IVirtioDeviceHost
{
    GuestMemory Memory { get; }

    /// <summary>Raises the used-buffer interrupt.</summary>
    void SignalUsedBuffers();

    /// <summary>The driver broke the rules: the device stops and sets DEVICE_NEEDS_RESET (logged at a bounded rate).</summary>
    void DeviceError(string message);
}
