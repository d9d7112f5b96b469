using MiniVmm.Firmware.Boot;

namespace MiniVmm.Firmware.Guests.Writer;

/// <summary>
/// Physical layout of the writer image (one PT_LOAD from <see cref="GuestAbi.ImageBase"/>):
/// <code>
/// 0x100000  data page: GDT, GDTR, shared variables (below)
/// 0x101000  status page (GuestAbi.StatusPageGpa), zero in the file
/// 0x102000  16 TSSs with I/O bitmaps
/// 0x104000  PML4, PDPT, 16 PDs (identity map of 16 GiB with 2 MiB pages)
/// 0x116000  64-bit code + strings, then the 32-bit entries        (file ends here)
/// 0x120000  16 stacks of 8 KiB (bss: memsz > filesz)
/// 0x140000  end of image; the buffer starts at 16 MiB
/// </code>
/// </summary>
internal static class WriterLayout
{
    public const ulong DataPage = GuestAbi.ImageBase;
    public const ulong CodeBase = 0x11_6000;
    public const ulong CodeLimit = 0x12_0000;

    public static readonly BootLayout Boot = new()
    {
        Gdt = DataPage,
        Gdtr = DataPage + 0x1F0,
        TssBase = 0x10_2000,
        Pml4 = 0x10_4000,
        StackBase = 0x12_0000,
        StackSize = 0x2000,
    };

    public static ulong ImageEnd => Boot.StackEnd;

    /// <summary>Shared variables (u64 each unless noted) in the data page. Written by the BSP before it releases the
    /// APs (x86 stores are seen in order, so a released AP sees them), read-mostly afterwards.</summary>
    public static class Var
    {
        private const ulong V = DataPage + 0x200;
        public const ulong StartInfo = V + 0x00;      // EBX at the BSP entry (stored by 32-bit code)
        public const ulong Release = V + 0x08;        // BSP → APs: parameters are valid, check in now
        public const ulong CpusRequested = V + 0x10;
        public const ulong Joined = V + 0x18;         // u32: APs checked in; bit 31 = roster closed
        public const ulong Start = V + 0x20;          // BSP → APs: cpus_running and pacing are valid, sweep
        public const ulong CpusRunning = V + 0x28;
        public const ulong DoneCount = V + 0x30;      // APs that finished their sweeps
        public const ulong LineLock = V + 0x38;       // u32 serial line lock
        public const ulong FailLines = V + 0x40;      // FAIL lines printed so far
        public const ulong Pages = V + 0x48;
        public const ulong Rate = V + 0x50;           // total page writes/s, 0 = max
        public const ulong Pattern = V + 0x58;        // 0 seq, 1 rand
        public const ulong Sweeps = V + 0x60;         // 0 = forever
        public const ulong TscKhz = V + 0x68;
        public const ulong SnapshotAfter = V + 0x70;
        public const ulong ReportMs = V + 0x78;
        public const ulong CyclesPerPage = V + 0x80;  // per vCPU, 0 = unpaced
        public const ulong BacklogCycles = V + 0x88;
        public const ulong ReportCycles = V + 0x90;
        public const ulong NextReport = V + 0x98;     // TSC of the next progress line (~0 = never)
        public const ulong LastReportTsc = V + 0xA0;
        public const ulong LastReportPages = V + 0xA8;
        public const ulong Prefill = V + 0xB0;        // 1: the first sweep runs unpaced (fills the buffer fast)
        public const ulong BufferBase = V + 0xB8;   // gpa of the buffer (base= on the command line; default GuestAbi.BufferGpa)
        public const ulong End = V + 0xC0;
    }

    public const uint RosterClosed = 0x8000_0000;

    public static ulong S(int statusOffset) => GuestAbi.StatusPageGpa + (ulong)statusOffset;
}
