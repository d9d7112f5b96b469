namespace MiniVmm.Devices.Legacy;

/// <summary>16550A register offsets and bit definitions.</summary>
public sealed partial class Serial8250
{
    // Register offsets.
    private const int RegData = 0;       // RBR (read) / THR (write); DLL when DLAB
    private const int RegIer = 1;        // IER; DLM when DLAB
    private const int RegIirFcr = 2;     // IIR (read) / FCR (write)
    private const int RegLcr = 3;
    private const int RegMcr = 4;
    private const int RegLsr = 5;
    private const int RegMsr = 6;
    private const int RegScr = 7;

    // IER bits.
    internal const byte IerReceivedData = 0x01;
    internal const byte IerThrEmpty = 0x02;
    internal const byte IerLineStatus = 0x04;
    internal const byte IerModemStatus = 0x08;
    internal const byte IerMask = 0x0F;

    // IIR values (bit 0 set = nothing pending) and the FIFO-enabled bits.
    internal const byte IirNone = 0x01;
    internal const byte IirModemStatus = 0x00;
    internal const byte IirThrEmpty = 0x02;
    internal const byte IirReceivedData = 0x04;
    internal const byte IirLineStatus = 0x06;
    internal const byte IirFifoEnabled = 0xC0;

    // FCR bits.
    internal const byte FcrEnable = 0x01;
    internal const byte FcrClearRx = 0x02;
    internal const byte FcrClearTx = 0x04;
    internal const byte FcrPersistentMask = 0xC9; // enable, DMA mode, trigger level

    internal const byte LcrDlab = 0x80;

    // MCR bits.
    internal const byte McrDtr = 0x01;
    internal const byte McrRts = 0x02;
    internal const byte McrOut1 = 0x04;
    internal const byte McrOut2 = 0x08;
    internal const byte McrLoop = 0x10;
    internal const byte McrMask = 0x1F;

    // LSR bits.
    internal const byte LsrDataReady = 0x01;
    internal const byte LsrOverrun = 0x02;
    internal const byte LsrThrEmpty = 0x20;
    internal const byte LsrTransmitterEmpty = 0x40;

    // MSR bits.
    internal const byte MsrDeltaCts = 0x01;
    internal const byte MsrDeltaDsr = 0x02;
    internal const byte MsrTrailingRi = 0x04;
    internal const byte MsrDeltaDcd = 0x08;
    internal const byte MsrDeltaMask = 0x0F;
    internal const byte MsrCts = 0x10;
    internal const byte MsrDsr = 0x20;
    internal const byte MsrRi = 0x40;
    internal const byte MsrDcd = 0x80;
}
