namespace MiniVmm.Core.Bus;

/// <summary>
/// A device mapped on the PIO or MMIO bus. The device sees only the offset inside its own range, never the absolute
/// address, so the same device can sit at any base. Implementations must never throw on guest input: a bad access is
/// ignored (writes) or reads as zeros/ones.
/// </summary>
public interface IBusDevice
{
    /// <summary>Fills <paramref name="data"/> (1, 2, 4 or 8 bytes) with the value at <paramref name="offset"/>.</summary>
    void Read(ulong offset, Span<byte> data);

    /// <summary>Handles a guest write of <paramref name="data"/> at <paramref name="offset"/>.</summary>
    void Write(ulong offset, ReadOnlySpan<byte> data);
}
