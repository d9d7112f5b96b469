using MiniVmm.Core.Bus;

namespace MiniVmm.Machine.Devices;

/// <summary>
/// Devices are single-threaded state machines; several vCPU threads and the main loop reach them. This wrapper makes
/// every access to one device mutually exclusive with a lock the device owner can also take (<see cref="Gate"/>).
/// </summary>
public sealed class SerializedDevice(IBusDevice inner) : IBusDevice
{
    public Lock Gate { get; } = new();

    public void Read(ulong offset, Span<byte> data)
    {
        lock (Gate) inner.Read(offset, data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (Gate) inner.Write(offset, data);
    }
}
