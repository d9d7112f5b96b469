using System.Buffers.Binary;
using MiniVmm.Core.Bus;
using MiniVmm.Core.State;

namespace MiniVmm.Devices.Legacy;

/// <summary>The saved state of a <see cref="DebugExitPort"/>: the last value the guest wrote, if any.</summary>
/// <remarks>Encoding, version 1: <c>u8 has-value (0/1), u32 value</c> (0 when there is none), little endian.</remarks>
public sealed record DebugExitPortState(uint? LastValue)
{
    private const int EncodedBytes = 5;

    public byte[] Encode()
    {
        var data = new byte[EncodedBytes];
        data[0] = (byte)(LastValue.HasValue ? 1 : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(1), LastValue ?? 0);
        return data;
    }

    /// <exception cref="DeviceStateException">Not 5 bytes, a flag that is neither 0 nor 1, or a value without the flag.</exception>
    public static DebugExitPortState Decode(ReadOnlySpan<byte> d)
    {
        const string Device = nameof(DebugExitPort);
        if (d.Length != EncodedBytes) throw new DeviceStateException(Device, $"{d.Length} bytes; {EncodedBytes} expected");
        if (d[0] > 1) throw new DeviceStateException(Device, $"has-value flag {d[0]} is neither 0 nor 1");
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(d[1..]);
        if (d[0] == 0 && value != 0) throw new DeviceStateException(Device, $"value {value} recorded without its flag");
        return new DebugExitPortState(d[0] == 1 ? value : null);
    }
}

/// <summary>
/// QEMU <c>isa-debug-exit</c> compatible exit port (port 0xF4, 4 bytes wide): a guest write of 1, 2 or 4 bytes is read
/// as a little-endian value <c>v</c> and handed to the injected callback, which ends the VM with status <c>v</c>.
/// (QEMU itself exits with <c>(v &lt;&lt; 1) | 1</c>; MiniVmm passes <c>v</c> through unchanged.) As in QEMU the
/// offset inside the window does not matter. Reads return 0.
/// </summary>
/// <remarks>
/// <para>Thread safety: the callback runs on the writing vCPU thread; it should only record the request (e.g. ask the
/// main loop to stop). Several vCPUs may write at once: each write calls the callback.</para>
/// <para>Threat model:</para>
/// <code>
/// | Input                | Controlled by | Bound / handling                                               |
/// |----------------------|---------------|----------------------------------------------------------------|
/// | write width / offset | guest         | widths 1, 2, 4 accepted at any offset; others ignored, counted |
/// | written value        | guest         | any uint; its meaning is the VMM's exit status                 |
/// | write rate           | guest         | each write calls the callback once; no queue                   |
/// | saved state          | snapshot file | only a last value (any uint or none): nothing to reject        |
/// </code>
/// </remarks>
public sealed class DebugExitPort : IBusDevice, IPersistent<DebugExitPort, Action<uint>>
{
    /// <summary>The conventional I/O port (QEMU's default iobase).</summary>
    public const ushort DefaultPort = 0xF4;

    /// <summary>Size of the window on the PIO bus.</summary>
    public const ulong RegisterWindowSize = 4;

    private readonly Action<uint> _onExit;
    private long _lastValue = -1; // -1 = none; otherwise a uint
    private long _ignoredWrites;

    /// <param name="onExit">Called with the value the guest wrote.</param>
    public DebugExitPort(Action<uint> onExit)
    {
        _onExit = onExit ?? throw new ArgumentNullException(nameof(onExit));
    }

    /// <summary>The last value written, or null if the guest never wrote.</summary>
    public uint? LastValue
    {
        get
        {
            long value = Interlocked.Read(ref _lastValue);
            return value < 0 ? null : (uint)value;
        }
    }

    /// <summary>Writes ignored because of their width.</summary>
    public long IgnoredWrites => Interlocked.Read(ref _ignoredWrites);

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        uint value;
        switch (data.Length)
        {
            case 1:
                value = data[0];
                break;
            case 2:
                value = BinaryPrimitives.ReadUInt16LittleEndian(data);
                break;
            case 4:
                value = BinaryPrimitives.ReadUInt32LittleEndian(data);
                break;
            default:
                Interlocked.Increment(ref _ignoredWrites);
                return;
        }
        Interlocked.Exchange(ref _lastValue, value);
        _onExit(value);
    }

    public DebugExitPortState Save() => new(LastValue);

    public static ushort StateVersion => 1;

    /// <param name="onExit">Called with the value the guest wrote.</param>
    public static DebugExitPort Create(Action<uint> onExit) => new(onExit);

    public byte[] SaveState() => Save().Encode();

    public static DebugExitPort RestoreState(Action<uint> onExit, ushort version, ReadOnlySpan<byte> state) =>
        Restore(DebugExitPortState.Decode(state), onExit);

    /// <exception cref="DeviceStateException">Never in practice: every value is valid. Null state throws
    /// <see cref="ArgumentNullException"/>.</exception>
    public static DebugExitPort Restore(DebugExitPortState state, Action<uint> onExit)
    {
        ArgumentNullException.ThrowIfNull(state);
        var port = new DebugExitPort(onExit);
        port._lastValue = state.LastValue is { } v ? v : -1;
        return port;
    }
}
