namespace MiniVmm.Devices.Virtio.Net;

/// <summary>
/// The backend can never move a frame again (its tap interface was deleted, its fd is broken). Not an
/// <see cref="IOException"/>: a refused or unsendable frame costs that frame only, this stops the device.
/// </summary>
public sealed class NetBackendDeadException(string message, Exception? inner = null) : Exception(message, inner);
