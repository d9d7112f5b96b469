using MiniVmm.Core.Bus;
using MiniVmm.Core.State;

namespace MiniVmm.Devices.Legacy;

/// <summary>The saved state of an <see cref="I8042"/>. The model keeps no guest-visible state (no keyboard, no
/// output buffer, no command byte), so the record is empty; it exists so every device snapshots the same way.</summary>
/// <remarks>Encoding, version 1: zero bytes. A controller model that gains a command byte or an output buffer bumps
/// the version.</remarks>
public sealed record I8042State
{
    public static byte[] Encode() => [];

    /// <exception cref="DeviceStateException">Any byte at all.</exception>
    public static I8042State Decode(ReadOnlySpan<byte> d) => d.IsEmpty
        ? new I8042State()
        : throw new DeviceStateException(nameof(I8042), $"{d.Length} bytes; the version-1 state is empty");
}

/// <summary>
/// Just enough of the PC keyboard controller (i8042) for a guest to reboot the machine: writing command 0xFE
/// ("pulse output line 0", the CPU reset line) to the command port calls the injected reset callback. Linux uses it
/// with <c>reboot=k</c> and as a fallback. There is no keyboard or mouse: the status register always reads "output
/// buffer empty, input buffer empty, self-test passed", the data port reads 0, port 0x61 (system control port B)
/// reads 0, and every other write is ignored (counted).
/// </summary>
/// <remarks>
/// <para>Registered at port 0x60 with length 5: offset 0 = data (0x60), 1 = port B (0x61), 4 = status/command (0x64).
/// Wider accesses are split into byte accesses. The reset callback runs on the writing vCPU thread; it should only
/// record the request.</para>
/// <para>Threat model:</para>
/// <code>
/// | Input                       | Controlled by | Bound / handling                                        |
/// |-----------------------------|---------------|---------------------------------------------------------|
/// | register offset/width/value | guest         | only 0xFE at offset 4 acts; everything else is ignored   |
/// | reset request rate          | guest         | each request calls the callback once; no queue           |
/// | saved state                 | snapshot file | empty record: null and any byte are rejected             |
/// </code>
/// </remarks>
public sealed class I8042 : IBusDevice, IPersistent<I8042, Action>
{
    /// <summary>I/O port base (the data port).</summary>
    public const ushort DefaultPort = 0x60;

    /// <summary>Size of the window on the PIO bus: ports 0x60-0x64.</summary>
    public const ulong RegisterWindowSize = 5;

    /// <summary>Command that pulses the CPU reset line.</summary>
    public const byte CommandPulseReset = 0xFE;

    /// <summary>Status register value: system flag (bit 2) and keyboard not inhibited (bit 4) set; output buffer full
    /// (bit 0) and input buffer full (bit 1) clear, so a guest waiting for "input buffer empty" proceeds at once and
    /// one polling for data sees none.</summary>
    public const byte StatusNoData = 0x14;

    private const ulong OffsetCommand = 4;

    private readonly Action _onReset;
    private long _resetRequests;
    private long _ignoredWrites;

    /// <param name="onReset">Called when the guest pulses the reset line.</param>
    public I8042(Action onReset)
    {
        _onReset = onReset ?? throw new ArgumentNullException(nameof(onReset));
    }

    /// <summary>Reset pulses requested so far.</summary>
    public long ResetRequests => Interlocked.Read(ref _resetRequests);

    /// <summary>Byte writes that had no effect.</summary>
    public long IgnoredWrites => Interlocked.Read(ref _ignoredWrites);

    public void Read(ulong offset, Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
            // Status at 0x64; the data port, port B and 0x62-0x63 read 0 (no data, speaker/timer gates off).
            data[i] = offset <= OffsetCommand && (ulong)i == OffsetCommand - offset ? StatusNoData : (byte)0;
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            if (offset <= OffsetCommand && (ulong)i == OffsetCommand - offset && data[i] == CommandPulseReset)
            {
                Interlocked.Increment(ref _resetRequests);
                _onReset();
            }
            else
            {
                Interlocked.Increment(ref _ignoredWrites);
            }
        }
    }

    public I8042State Save() => new();

    public static ushort StateVersion => 1;

    /// <param name="onReset">Called when the guest pulses the reset line.</param>
    public static I8042 Create(Action onReset) => new(onReset);

    public byte[] SaveState() => I8042State.Encode();

    public static I8042 RestoreState(Action onReset, ushort version, ReadOnlySpan<byte> state) =>
        Restore(I8042State.Decode(state), onReset);

    public static I8042 Restore(I8042State state, Action onReset)
    {
        ArgumentNullException.ThrowIfNull(state);
        return new I8042(onReset);
    }
}
