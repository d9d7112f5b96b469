using System.Buffers.Binary;
using MiniVmm.Core.Bus;
using MiniVmm.Core.State;

namespace MiniVmm.Devices.Legacy;

/// <summary>The saved state of a <see cref="ControlPort"/>: the status value the VMM last set.</summary>
/// <remarks>Encoding, version 1: <c>u32 status</c>, little endian.</remarks>
public sealed record ControlPortState(uint Status)
{
    public byte[] Encode()
    {
        var data = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(data, Status);
        return data;
    }

    /// <exception cref="DeviceStateException">Not 4 bytes.</exception>
    public static ControlPortState Decode(ReadOnlySpan<byte> d) => d.Length == 4
        ? new ControlPortState(BinaryPrimitives.ReadUInt32LittleEndian(d))
        : throw new DeviceStateException(nameof(ControlPort), $"{d.Length} bytes; 4 expected");
}

/// <summary>
/// MiniVmm's own guest-to-VMM control port (port 0x520, 4 bytes wide).
/// </summary>
/// <remarks>
/// <para>Protocol:</para>
/// <list type="bullet">
/// <item>A 1-, 2- or 4-byte write at offset 0 whose little-endian value is <see cref="CommandRequestSnapshot"/> (1) asks
/// the VMM to take a snapshot: the injected callback is called on the writing vCPU thread and should only queue the
/// request for the main loop. Byte writes count because a Linux guest's user space reaches the port only through
/// /dev/port, which the kernel turns into one <c>outb</c> per byte.</item>
/// <item>Any other value, width or offset is ignored and counted in <see cref="IgnoredWrites"/>.</item>
/// <item>Reads return the 32-bit status word set by the VMM through <see cref="SetStatus"/> (0 at start), little
/// endian: a read of <c>n</c> bytes at offset <c>o</c> returns status bytes <c>o..o+n-1</c> (bytes past the 4th read
/// 0). The meaning of the status is the VMM's (e.g. "snapshot in progress" / "snapshot done"); the device only stores
/// it.</item>
/// </list>
/// <para>Thread safety: <see cref="SetStatus"/> may be called from any thread while vCPUs read.</para>
/// <para>Threat model:</para>
/// <code>
/// | Input                 | Controlled by | Bound / handling                                                   |
/// |-----------------------|---------------|--------------------------------------------------------------------|
/// | write width/offset    | guest         | only a 1/2/4-byte write at offset 0 can act; others ignored, counted |
/// | written value         | guest         | only 1 acts; others ignored, counted                               |
/// | request rate          | guest         | each request calls the callback once; the VMM coalesces/refuses    |
/// | read offset/width     | guest         | bytes outside the 4-byte status read 0                             |
/// | saved state           | snapshot file | any uint is a valid status: only null is rejected                  |
/// </code>
/// </remarks>
public sealed class ControlPort : IBusDevice, IPersistent<ControlPort, Action>
{
    /// <summary>The I/O port MiniVmm maps it at.</summary>
    public const ushort DefaultPort = 0x520;

    /// <summary>Size of the window on the PIO bus.</summary>
    public const ulong RegisterWindowSize = 4;

    /// <summary>The value a guest writes (8, 16 or 32 bits, offset 0) to request a snapshot.</summary>
    public const uint CommandRequestSnapshot = 1;

    private readonly Action _onSnapshotRequest;
    private int _status;
    private long _ignoredWrites;
    private long _snapshotRequests;

    /// <param name="onSnapshotRequest">Called when the guest requests a snapshot.</param>
    public ControlPort(Action onSnapshotRequest)
    {
        _onSnapshotRequest = onSnapshotRequest ?? throw new ArgumentNullException(nameof(onSnapshotRequest));
    }

    /// <summary>The status word guest reads return.</summary>
    public uint Status => (uint)Volatile.Read(ref _status);

    /// <summary>Writes that were not a snapshot request.</summary>
    public long IgnoredWrites => Interlocked.Read(ref _ignoredWrites);

    /// <summary>Snapshot requests received.</summary>
    public long SnapshotRequests => Interlocked.Read(ref _snapshotRequests);

    /// <summary>Sets the value that guest reads return.</summary>
    public void SetStatus(uint status) => Volatile.Write(ref _status, (int)status);

    public void Read(ulong offset, Span<byte> data)
    {
        uint status = Status;
        for (int i = 0; i < data.Length; i++)
        {
            bool inside = offset < RegisterWindowSize && (ulong)i < RegisterWindowSize - offset;
            data[i] = inside ? (byte)(status >> (8 * ((int)offset + i))) : (byte)0;
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset == 0 && IsRequest(data))
        {
            Interlocked.Increment(ref _snapshotRequests);
            _onSnapshotRequest();
            return;
        }
        Interlocked.Increment(ref _ignoredWrites);
    }

    private static bool IsRequest(ReadOnlySpan<byte> data) => data.Length switch
    {
        1 => data[0] == CommandRequestSnapshot,
        2 => BinaryPrimitives.ReadUInt16LittleEndian(data) == CommandRequestSnapshot,
        4 => BinaryPrimitives.ReadUInt32LittleEndian(data) == CommandRequestSnapshot,
        _ => false,
    };

    public ControlPortState Save() => new(Status);

    public static ushort StateVersion => 1;

    /// <param name="onSnapshotRequest">Called when the guest requests a snapshot.</param>
    public static ControlPort Create(Action onSnapshotRequest) => new(onSnapshotRequest);

    public byte[] SaveState() => Save().Encode();

    public static ControlPort RestoreState(Action onSnapshotRequest, ushort version, ReadOnlySpan<byte> state) =>
        Restore(ControlPortState.Decode(state), onSnapshotRequest);

    public static ControlPort Restore(ControlPortState state, Action onSnapshotRequest)
    {
        ArgumentNullException.ThrowIfNull(state);
        var port = new ControlPort(onSnapshotRequest);
        port.SetStatus(state.Status);
        return port;
    }
}
