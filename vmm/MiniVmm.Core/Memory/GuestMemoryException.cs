namespace MiniVmm.Core.Memory;

/// <summary>A guest-physical access outside guest RAM. Raised for VMM-internal bugs and bad host input; guest-driven
/// accesses (device DMA) check <see cref="GuestMemory.Contains"/> first and treat a miss as guest misbehaviour.</summary>
public sealed class GuestMemoryException(string message) : Exception(message);
