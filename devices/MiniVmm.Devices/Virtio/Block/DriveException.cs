namespace MiniVmm.Devices.Virtio.Block;

/// <summary>A drive cannot be used (missing or unreadable image, locked by another VMM); the message says which.</summary>
public sealed class DriveException(string message, Exception? inner = null) : Exception(message, inner);
