using MiniVmm.Core.Bus;

namespace MiniVmm.Devices.Tests;

/// <summary>Collects everything a device transmits.</summary>
internal sealed class RecordingSink : IByteSink
{
    private readonly List<byte> _bytes = [];

    public IReadOnlyList<byte> Bytes => _bytes;

    public void Write(ReadOnlySpan<byte> data) => _bytes.AddRange(data.ToArray());
}

/// <summary>Records the level of an interrupt line and how often it changed.</summary>
internal sealed class RecordingInterruptLine : IInterruptLine
{
    public bool Level { get; private set; }
    public int Raises { get; private set; }
    public int Calls { get; private set; }

    public void SetLevel(bool asserted)
    {
        Calls++;
        if (asserted && !Level)
            Raises++;
        Level = asserted;
    }
}
