using MiniVmm.Core.State;

namespace MiniVmm.Devices;

/// <summary>A saved device state record is invalid (corrupted or hostile snapshot). Restore validates state as strictly
/// as guest input and throws this instead of building a device in an impossible state.</summary>
public sealed class DeviceStateException : PersistentStateException
{
    public DeviceStateException(string device, string message)
        : base(device, message)
    {
    }

    /// <summary>The device whose state was rejected, e.g. "Serial8250".</summary>
    public string Device => Component;
}
