using MiniVmm.Core.Bus;

namespace MiniVmm.Core.Tests.Bus;

/// <summary>Records the offsets and sizes it sees; reads return <see cref="Fill"/>.</summary>
internal sealed class RecordingDevice(byte fill = 0xAB) : IBusDevice
{
    public byte Fill { get; } = fill;
    public List<(ulong Offset, int Size)> Reads { get; } = [];
    public List<(ulong Offset, byte[] Data)> Writes { get; } = [];

    public void Read(ulong offset, Span<byte> data)
    {
        Reads.Add((offset, data.Length));
        data.Fill(Fill);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data) => Writes.Add((offset, data.ToArray()));
}

/// <summary>A device that does nothing and never allocates (for the allocation test).</summary>
internal sealed class QuietDevice : IBusDevice
{
    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
    }
}
