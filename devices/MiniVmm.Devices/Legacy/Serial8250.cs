using MiniVmm.Core.Bus;

namespace MiniVmm.Devices.Legacy;

/// <summary>
/// A 16550A UART (the PC "8250" serial port) as a pure state machine: the guest drives it through eight byte-wide
/// registers, output goes to an <see cref="IByteSink"/>, input arrives through <see cref="EnqueueInput"/>, and the
/// interrupt is a level on an <see cref="IInterruptLine"/> (asserted while an enabled condition is pending).
/// </summary>
/// <remarks>
/// <para>Transmission is instant: every THR write reaches the sink at once, so LSR.THRE and LSR.TEMT always read 1
/// and a THR-empty interrupt becomes pending after each write (and when IER.ETBEI is switched on). Reception is
/// modelled without timers: the received-data interrupt is pending whenever the RX FIFO holds data, whatever the FCR
/// trigger level (as if the character timeout fired at once). The RX FIFO holds 64 bytes even with FCR.FE clear.
/// The IRQ is not gated by MCR.OUT2 (as in QEMU and Firecracker). Accesses wider than a byte are split into
/// consecutive byte accesses (as QEMU does).</para>
/// <para>Thread safety: every public member takes an internal lock, so vCPU threads (register access) and the main
/// loop (<see cref="EnqueueInput"/>) may call concurrently. The sink, the interrupt line and the RX-drained callback
/// are called with that lock held and must not call back into the device.</para>
/// <para>Threat model (the guest is hostile; the host side is trusted):</para>
/// <code>
/// | Input                       | Controlled by | Bound / handling                                            |
/// |-----------------------------|---------------|-------------------------------------------------------------|
/// | register offset/width/value | guest         | offsets 0-7 decoded, anything else reads 0 / is ignored;    |
/// |                             |               | reserved IER/MCR/FCR bits masked; LSR and MSR writes ignored |
/// | THR write rate              | guest         | one byte per write straight to the sink; nothing buffered   |
/// | loopback THR writes         | guest         | into the 64-byte RX FIFO; when full: byte dropped, LSR.OE   |
/// | interrupt storms            | guest         | the line changes only when the computed level changes       |
/// | host input                  | host          | EnqueueInput accepts at most the FIFO's free space (64 max) |
/// | saved state                 | snapshot file | Restore rejects reserved bits and a FIFO over 64 bytes      |
/// </code>
/// </remarks>
public sealed partial class Serial8250 : IBusDevice
{
    /// <summary>I/O port base of COM1.</summary>
    public const ushort Com1Port = 0x3F8;

    /// <summary>ISA IRQ of COM1.</summary>
    public const uint Com1Irq = 4;

    /// <summary>Size of the register window on the PIO bus.</summary>
    public const ulong RegisterWindowSize = 8;

    /// <summary>Capacity of the RX FIFO (16550A hardware has 16; 64 keeps pasted input flowing with no timers).</summary>
    public const int RxFifoCapacity = 64;

    /// <summary>Reset values (8N1 at 9600 baud, like vm-superio).</summary>
    private const byte DefaultLcr = 0x03;
    private const byte DefaultDll = 0x0C;

    private readonly Lock _lock = new();
    private readonly IByteSink _sink;
    private readonly IInterruptLine _interrupt;
    private readonly Action? _rxDrained;
    private readonly byte[] _rx = new byte[RxFifoCapacity];
    private int _rxHead;
    private int _rxCount;

    private byte _ier;
    private byte _fcr;
    private byte _lcr = DefaultLcr;
    private byte _mcr;
    private byte _scr;
    private byte _dll = DefaultDll;
    private byte _dlm;
    private bool _thrEmptyPending;
    private bool _overrun;
    private byte _msrDelta;
    private bool _lineAsserted;

    private long _transmittedBytes;
    private long _overruns;

    /// <param name="sink">Receives every byte the guest transmits (not in loopback mode).</param>
    /// <param name="interrupt">The COM IRQ line.</param>
    /// <param name="rxDrained">Optional: called when a guest read empties the RX FIFO, so the host can feed more
    /// input (e.g. signal an event fd). Called with the device lock held.</param>
    public Serial8250(IByteSink sink, IInterruptLine interrupt, Action? rxDrained = null)
    {
        _sink = sink ?? throw new ArgumentNullException(nameof(sink));
        _interrupt = interrupt ?? throw new ArgumentNullException(nameof(interrupt));
        _rxDrained = rxDrained;
    }

    /// <summary>Bytes sent to the sink so far.</summary>
    public long TransmittedBytes
    {
        get { lock (_lock) return _transmittedBytes; }
    }

    /// <summary>Loopback bytes lost to a full RX FIFO so far.</summary>
    public long OverrunCount
    {
        get { lock (_lock) return _overruns; }
    }

    /// <summary>How many more bytes <see cref="EnqueueInput"/> would accept now (0 in loopback mode).</summary>
    public int RxFreeSpace
    {
        get { lock (_lock) return IsLoopback ? 0 : RxFifoCapacity - _rxCount; }
    }

    /// <summary>Whether the interrupt line is currently asserted.</summary>
    public bool InterruptAsserted
    {
        get { lock (_lock) return _lineAsserted; }
    }

    private bool IsLoopback => (_mcr & McrLoop) != 0;
    private bool Dlab => (_lcr & LcrDlab) != 0;

    /// <summary>Queues host input for the guest. Returns how many bytes were accepted: at most the RX FIFO's free
    /// space, and none in loopback mode (the receiver is disconnected from the line then). The caller keeps the rest
    /// and retries later.</summary>
    public int EnqueueInput(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (IsLoopback)
                return 0;
            int accepted = Math.Min(data.Length, RxFifoCapacity - _rxCount);
            for (int i = 0; i < accepted; i++)
                PushRx(data[i]);
            if (accepted > 0)
                UpdateInterrupt();
            return accepted;
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
                data[i] = InRange(offset, i) ? ReadRegister((int)offset + i) : (byte)0;
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                if (InRange(offset, i))
                    WriteRegister((int)offset + i, data[i]);
            }
        }
    }

    private static bool InRange(ulong offset, int i) =>
        offset < RegisterWindowSize && (ulong)i < RegisterWindowSize - offset;

    private byte ReadRegister(int register)
    {
        switch (register)
        {
            case RegData:
                return Dlab ? _dll : ReadReceiveBuffer();
            case RegIer:
                return Dlab ? _dlm : _ier;
            case RegIirFcr:
            {
                byte iir = ComputeIir();
                // Identifying a THR-empty interrupt through IIR acknowledges it.
                if (iir == IirThrEmpty)
                {
                    _thrEmptyPending = false;
                    UpdateInterrupt();
                }
                return (byte)(iir | ((_fcr & FcrEnable) != 0 ? IirFifoEnabled : 0));
            }
            case RegLcr:
                return _lcr;
            case RegMcr:
                return _mcr;
            case RegLsr:
            {
                byte lsr = (byte)(LsrThrEmpty | LsrTransmitterEmpty);
                if (_rxCount > 0)
                    lsr |= LsrDataReady;
                if (_overrun)
                {
                    lsr |= LsrOverrun;
                    _overrun = false;
                    UpdateInterrupt();
                }
                return lsr;
            }
            case RegMsr:
            {
                byte msr = (byte)(ModemStatusLines(_mcr) | _msrDelta);
                if (_msrDelta != 0)
                {
                    _msrDelta = 0;
                    UpdateInterrupt();
                }
                return msr;
            }
            case RegScr:
                return _scr;
            default:
                return 0;
        }
    }

    private void WriteRegister(int register, byte value)
    {
        switch (register)
        {
            case RegData:
                if (Dlab)
                    _dll = value;
                else
                    Transmit(value);
                break;
            case RegIer:
                if (Dlab)
                {
                    _dlm = value;
                }
                else
                {
                    byte newIer = (byte)(value & IerMask);
                    // THR is always empty: enabling ETBEI raises the THR-empty interrupt at once, as on hardware.
                    if ((newIer & IerThrEmpty) != 0 && (_ier & IerThrEmpty) == 0)
                        _thrEmptyPending = true;
                    _ier = newIer;
                    UpdateInterrupt();
                }
                break;
            case RegIirFcr:
                WriteFifoControl(value);
                break;
            case RegLcr:
                _lcr = value;
                break;
            case RegMcr:
            {
                byte before = ModemStatusLines(_mcr);
                _mcr = (byte)(value & McrMask);
                byte after = ModemStatusLines(_mcr);
                _msrDelta |= ModemStatusDelta(before, after);
                UpdateInterrupt();
                break;
            }
            case RegScr:
                _scr = value;
                break;
            default:
                // LSR and MSR are read-only (writes are a factory-test feature); ignore.
                break;
        }
    }

    private byte ReadReceiveBuffer()
    {
        if (_rxCount == 0)
            return 0;
        byte value = _rx[_rxHead];
        _rxHead = (_rxHead + 1) % RxFifoCapacity;
        _rxCount--;
        UpdateInterrupt();
        if (_rxCount == 0)
            _rxDrained?.Invoke();
        return value;
    }

    private void Transmit(byte value)
    {
        if (IsLoopback)
        {
            if (_rxCount == RxFifoCapacity)
            {
                _overrun = true;
                _overruns++;
            }
            else
            {
                PushRx(value);
            }
        }
        else
        {
            _sink.Write(new ReadOnlySpan<byte>(in value));
            _transmittedBytes++;
        }
        _thrEmptyPending = true;
        UpdateInterrupt();
    }

    private void WriteFifoControl(byte value)
    {
        byte newFcr = (value & FcrEnable) != 0 ? (byte)(value & FcrPersistentMask) : (byte)0;
        // Toggling the enable bit clears both FIFOs, as on hardware.
        bool clearRx = (value & FcrClearRx) != 0 || ((newFcr ^ _fcr) & FcrEnable) != 0;
        _fcr = newFcr;
        if (clearRx)
        {
            _rxHead = 0;
            _rxCount = 0;
        }
        // FCR.ClearTx: the TX side holds nothing (transmission is instant).
        UpdateInterrupt();
    }

    private void PushRx(byte value)
    {
        _rx[(_rxHead + _rxCount) % RxFifoCapacity] = value;
        _rxCount++;
    }

    /// <summary>IIR interrupt identification by priority: line status, received data, THR empty, modem status.</summary>
    private byte ComputeIir()
    {
        if ((_ier & IerLineStatus) != 0 && _overrun)
            return IirLineStatus;
        if ((_ier & IerReceivedData) != 0 && _rxCount > 0)
            return IirReceivedData;
        if ((_ier & IerThrEmpty) != 0 && _thrEmptyPending)
            return IirThrEmpty;
        if ((_ier & IerModemStatus) != 0 && _msrDelta != 0)
            return IirModemStatus;
        return IirNone;
    }

    private void UpdateInterrupt()
    {
        bool level = ComputeIir() != IirNone;
        if (level != _lineAsserted)
        {
            _lineAsserted = level;
            _interrupt.SetLevel(level);
        }
    }

    /// <summary>MSR bits 4-7. In loopback they mirror MCR (RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD); otherwise a modem
    /// that is always ready (CTS, DSR, DCD).</summary>
    private static byte ModemStatusLines(byte mcr)
    {
        if ((mcr & McrLoop) == 0)
            return MsrCts | MsrDsr | MsrDcd;
        byte msr = 0;
        if ((mcr & McrRts) != 0) msr |= MsrCts;
        if ((mcr & McrDtr) != 0) msr |= MsrDsr;
        if ((mcr & McrOut1) != 0) msr |= MsrRi;
        if ((mcr & McrOut2) != 0) msr |= MsrDcd;
        return msr;
    }

    private static byte ModemStatusDelta(byte before, byte after)
    {
        byte delta = 0;
        byte changed = (byte)(before ^ after);
        if ((changed & MsrCts) != 0) delta |= MsrDeltaCts;
        if ((changed & MsrDsr) != 0) delta |= MsrDeltaDsr;
        if ((before & MsrRi) != 0 && (after & MsrRi) == 0) delta |= MsrTrailingRi;
        if ((changed & MsrDcd) != 0) delta |= MsrDeltaDcd;
        return delta;
    }
}
