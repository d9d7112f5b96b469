namespace MiniVmm.Devices.Virtio.Queue;

/// <summary>
/// The driver laid out a ring or descriptor chain that breaks the virtio rules (an address outside guest RAM, a loop,
/// a nested indirect table, an impossible index). The only exception the queue parser throws on guest input; the
/// device answers it by entering DEVICE_NEEDS_RESET.
/// </summary>
public sealed class VirtqueueException(string message) : Exception(message);
