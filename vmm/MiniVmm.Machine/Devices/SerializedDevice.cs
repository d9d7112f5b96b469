using MiniVmm.Core.Bus;

namespace MiniVmm.Machine.Devices;

/// <summary>
/// Devices are single-threaded state machines; several vCPU threads and the main loop reach them. This wrapper makes
/// every access to one device mutually exclusive with a lock the device owner can also take (<see cref="Gate"/>): the
/// device manager saves the device's state under it.
/// </summary>
public sealed class SerializedDevice(IBusDevice inner, Lock gate) : IBusDevice
{
    public SerializedDevice(IBusDevice inner) : this(inner, new Lock()) { }

    public Lock Gate { get; } = gate;

    /// <summary>The device behind the lock.</summary>
    public IBusDevice Inner { get; } = inner;

    public void Read(ulong offset, Span<byte> data)
    {
        lock (Gate) Inner.Read(offset, data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (Gate) Inner.Write(offset, data);
    }
}
