using MiniVmm.Firmware.Boot;

namespace MiniVmm.Firmware.Guests.Net;

/// <summary>
/// Physical layout of vnet.elf (one PT_LOAD from <see cref="GuestAbi.ImageBase"/>, one vCPU):
/// <code>
/// 0x100000  data page: GDT, GDTR, variables
/// 0x102000  TSS with I/O bitmap
/// 0x104000  PML4, PDPT, 16 PDs (identity map of 16 GiB: the virtio windows are inside)
/// 0x116000  64-bit code + strings, then the 32-bit entry   (file ends here)
/// 0x120000  stack (8 KiB, bss)
/// 0x130000  receive queue: descriptors, +0x1000 available ring, +0x2000 used ring
/// 0x134000  transmit queue (same shape)
/// 0x140000  8 receive buffers of 2 KiB (a 12-byte header and a 1514-byte frame fit)
/// 0x148000  end of image
/// </code>
/// </summary>
internal static class NetGuestLayout
{
    public const ulong DataPage = GuestAbi.ImageBase;
    public const ulong CodeBase = 0x11_6000;
    public const ulong CodeLimit = 0x12_0000;
    public const ulong RxQueue = 0x13_0000;
    public const ulong TxQueue = 0x13_4000;
    public const ulong RxBuffers = 0x14_0000;
    public const int BufferBytes = 2048;
    public const ulong ImageEnd = 0x14_8000;

    public const int Avail = 0x1000, Used = 0x2000;
    public const int QueueSize = 8;

    public static readonly BootLayout Boot = new()
    {
        Gdt = DataPage,
        Gdtr = DataPage + 0x1F0,
        TssBase = 0x10_2000,
        Pml4 = 0x10_4000,
        StackBase = 0x12_0000,
        StackSize = 0x2000,
        MaxVcpus = 1,
    };

    /// <summary>u64 variables in the data page.</summary>
    public static class Var
    {
        private const ulong V = DataPage + 0x200;
        public const ulong StartInfo = V + 0x00;
        public const ulong LineLock = V + 0x08;
        public const ulong NetBase = V + 0x10;
        public const ulong Frames = V + 0x18;      // frames= : exit after echoing this many (0: echo for ever)
        public const ulong Echoed = V + 0x20;
        public const ulong Ignored = V + 0x28;     // frames of another EtherType (not echoed)
        public const ulong RxAvail = V + 0x30;     // next receive available index
        public const ulong TxAvail = V + 0x38;     // next transmit available index
        public const ulong RxSeen = V + 0x40;      // receive used entries consumed
    }
}
