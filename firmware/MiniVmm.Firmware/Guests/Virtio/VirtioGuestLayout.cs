using MiniVmm.Firmware.Boot;

namespace MiniVmm.Firmware.Guests.Virtio;

/// <summary>
/// Physical layout of vblk.elf (one PT_LOAD from <see cref="GuestAbi.ImageBase"/>, one vCPU):
/// <code>
/// 0x100000  data page: GDT, GDTR, variables
/// 0x102000  TSS with I/O bitmap
/// 0x104000  PML4, PDPT, 16 PDs (identity map of 16 GiB: the virtio windows are inside)
/// 0x116000  64-bit code + strings, then the 32-bit entry   (file ends here)
/// 0x120000  stack (8 KiB, bss)
/// 0x130000  virtio-blk queue: descriptors, +0x1000 available ring, +0x2000 used ring, +0x3000 request header,
///           +0x3100 status byte; 0x138000 data buffer (64 KiB, 4 KiB aligned)
/// 0x150000  virtio-rng queue (same shape), 0x154000 its 64-byte buffer
/// 0x160000  end of image
/// 0x200000  writer mode: the generation table, one u64 per 4 KiB block of the disk (at most 2 MiB: 1 GiB of disk)
/// </code>
/// </summary>
internal static class VirtioGuestLayout
{
    public const ulong DataPage = GuestAbi.ImageBase;
    public const ulong CodeBase = 0x11_6000;
    public const ulong CodeLimit = 0x12_0000;
    public const ulong BlkQueue = 0x13_0000;
    public const ulong BlkData = 0x13_8000;
    public const int BlkDataBytes = 64 * 1024;
    public const ulong RngQueue = 0x15_0000;
    public const ulong RngBuffer = 0x15_4000;
    public const ulong ImageEnd = 0x16_0000;
    public const ulong WriterTable = 0x20_0000;
    /// <summary>Writer mode: at most this many 4 KiB blocks (1 GiB of disk, a 2 MiB table).</summary>
    public const int MaxWriterBlocks = 256 * 1024;

    // Offsets inside a queue area.
    public const int Avail = 0x1000, Used = 0x2000, Header = 0x3000, StatusByte = 0x3100;
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
        public const ulong TscKhz = V + 0x10;
        public const ulong Reads = V + 0x18;        // reads= : extra 4 KiB reads to time
        public const ulong Sectors = V + 0x20;      // sectors= : how many sectors the check covers
        public const ulong AvailIdx = V + 0x28;     // next available index of the queue in use
        public const ulong Failures = V + 0x30;
        public const ulong PrevGen = V + 0x38;
        public const ulong Gen = V + 0x40;
        public const ulong BlkBase = V + 0x48;
        public const ulong RngBase = V + 0x50;
        public const ulong Features = V + 0x58;     // blk device features, low word
        public const ulong T0 = V + 0x60;
        public const ulong BlkAvail = V + 0x68;     // saved AvailIdx per device
        public const ulong RngAvail = V + 0x70;
        public const ulong Capacity = V + 0x78;
        public const ulong Snapshot = V + 0x80;     // snapshot=1: ask the VMM for a snapshot, then check again
        public const ulong WriterLeft = V + 0x88;   // writer=N: writes still to do (the disk writer mode)
        public const ulong WriterDone = V + 0x90;
        public const ulong Blocks = V + 0x98;       // blocks= : 4 KiB blocks the writer covers (0: the whole disk)
        public const ulong SnapAt = V + 0xa0;       // snapat=K: ask for a snapshot after K writes
        public const ulong FlushEvery = V + 0xa8;   // flush=F: a flush every F writes (default 64)
        public const ulong Rng = V + 0xb0;          // the writer's LCG state
        public const ulong WriterT0 = V + 0xb8;
        public const ulong Report = V + 0xc8;       // report=R: a progress line every R writes (default 1024)
        public const ulong Fresh = V + 0xc0;        // fresh=1: the disk is all zeros (generation 0): skip learning it
    }
}
