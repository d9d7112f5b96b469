namespace MiniVmm.Firmware;

/// <summary>
/// The contract between the MiniVmm test guests and the VMM (and its integration tests). Every number a VMM or a test
/// needs to talk to a guest lives here, so both sides read the same constants. firmware/README.md describes the same
/// contract in prose.
/// </summary>
public static class GuestAbi
{
    // ---- Image layout -------------------------------------------------------------------------------------------
    /// <summary>Lowest physical address of any PT_LOAD segment (1 MiB); p_paddr == p_vaddr.</summary>
    public const ulong ImageBase = 0x10_0000;
    public const int PageSize = 4096;

    // ---- ELF notes ----------------------------------------------------------------------------------------------
    /// <summary>Name of the Xen PVH note (stored as "Xen\0").</summary>
    public const string XenNoteName = "Xen";
    /// <summary>XEN_ELFNOTE_PHYS32_ENTRY: 8-byte descriptor holding the 32-bit physical BSP entry.</summary>
    public const uint XenElfNotePhys32Entry = 18;
    /// <summary>Name of the MiniVmm note (stored as "MiniVmm\0"), in the same PT_NOTE as the Xen note.</summary>
    public const string MiniVmmNoteName = "MiniVmm";
    /// <summary>MiniVmm note type 1: 8-byte descriptor holding the 32-bit physical entry for application processors.
    /// APs start there like the BSP at the PVH entry, with EBX = hvm_start_info and ESI = vCPU index.</summary>
    public const uint MiniVmmNoteApEntry = 1;

    // ---- PVH start info ------------------------------------------------------------------------------------------
    public const uint HvmStartInfoMagic = 0x336e_c578;
    public const uint E820Ram = 1;

    // ---- Ports --------------------------------------------------------------------------------------------------
    public const ushort SerialPort = 0x3F8;
    /// <summary>Line status register; bit 5 (THR empty) is polled before each byte (bounded, so a stuck LSR only slows).</summary>
    public const ushort SerialLsrPort = 0x3FD;
    /// <summary>isa-debug-exit compatible: a 32-bit OUT of value v ends the VM with guest status v (QEMU exits (v&lt;&lt;1)|1).</summary>
    public const ushort DebugExitPort = 0xF4;
    /// <summary>MiniVmm control port; a 32-bit OUT of <see cref="ControlSnapshotRequest"/> asks for a snapshot.</summary>
    public const ushort ControlPort = 0x520;
    public const uint ControlSnapshotRequest = 1;

    // ---- Exit statuses (debug-exit values) ------------------------------------------------------------------------
    public const uint ExitSuccess = 0;
    public const uint ExitFailures = 1;
    public const uint ExitBadArguments = 3;

    // ---- Status page ----------------------------------------------------------------------------------------------
    /// <summary>Physical address of the writer's status page (page aligned, zero in the image, inside the PT_LOAD).</summary>
    public const ulong StatusPageGpa = 0x10_1000;
    /// <summary>"MVSTATUS" read as a little-endian u64; written by the guest when it starts.</summary>
    public const ulong StatusMagic = 0x5355_5441_5453_564D;
    public const ulong StatusVersion = 1;
    public const ulong StateBooting = 0;
    public const ulong StateRunning = 1;
    public const ulong StateDone = 2;

    /// <summary>Byte offsets of the u64 fields in the status page.</summary>
    public static class Status
    {
        public const int Magic = 0x00;
        public const int Version = 0x08;
        /// <summary>0 booting, 1 running (sweeps started), 2 done (exit_status valid).</summary>
        public const int State = 0x10;
        public const int CpusRequested = 0x18;
        /// <summary>vCPUs that checked in and sweep a slice (set before state becomes running).</summary>
        public const int CpusRunning = 0x20;
        public const int BufferGpa = 0x28;
        public const int BufferPages = 0x30;
        /// <summary>0 = run forever.</summary>
        public const int SweepsTarget = 0x38;
        /// <summary>Sum of the per-vCPU pages_written; refreshed at each progress report and at the end.</summary>
        public const int TotalPagesWritten = 0x40;
        /// <summary>Updated atomically at every failure.</summary>
        public const int TotalFailures = 0x48;
        /// <summary>Address of the first mismatching u64 word (0 = no failure yet).</summary>
        public const int FirstFailureGpa = 0x50;
        public const int FirstFailureExpected = 0x58;
        public const int FirstFailureFound = 0x60;
        /// <summary>Debug-exit value, valid once state == done.</summary>
        public const int ExitStatus = 0x68;
        /// <summary>Requested total page writes per second (0 = max).</summary>
        public const int RateTarget = 0x70;
        /// <summary>0 = seq, 1 = rand.</summary>
        public const int Pattern = 0x78;
        public const int TscKhz = 0x80;
        /// <summary>Number of writes to the control port so far.</summary>
        public const int SnapshotRequests = 0x88;
        /// <summary>Progress reports whose TSC reading was lower than the previous report's (0 when time never went
        /// backwards, across snapshots and restores too).</summary>
        public const int ClockBackwards = 0x90;
        public const int VcpuBlocks = 0x100;
    }

    public const int StatusVcpuBlockSize = 0x40;
    public const int MaxVcpus = 16;

    /// <summary>Byte offsets inside the per-vCPU block at StatusPageGpa + 0x100 + slot * 0x40. Slot 0 is the BSP; APs
    /// get slots 1.. in check-in order (vcpu_index says which vCPU owns the slot).</summary>
    public static class VcpuStatus
    {
        /// <summary>Sweeps completed by this vCPU. Its pages hold this value; the sweep in progress writes it + 1.</summary>
        public const int Generation = 0x00;
        /// <summary>Pages written by this vCPU since boot (all sweeps).</summary>
        public const int PagesWritten = 0x08;
        public const int Failures = 0x10;
        /// <summary>Slice-relative index of the page being (or last) visited.</summary>
        public const int CurrentPageIndex = 0x18;
        /// <summary>TSC cycles the last completed sweep took.</summary>
        public const int LastSweepTscCycles = 0x20;
        public const int VcpuIndex = 0x28;
        /// <summary>0 idle, 1 sweeping, 2 finished its sweeps.</summary>
        public const int State = 0x30;
    }

    public static ulong VcpuBlockGpa(int slot) => StatusPageGpa + Status.VcpuBlocks + (ulong)(slot * StatusVcpuBlockSize);

    // ---- Writer buffer ------------------------------------------------------------------------------------------
    /// <summary>Physical base of the writer buffer (16 MiB); it must be RAM in the memmap for its whole length.</summary>
    public const ulong BufferGpa = 0x100_0000;
    /// <summary>Byte offsets of the u64 words checked and written in each page, in write order.</summary>
    public static readonly int[] CheckedWordOffsets = [0, 2048, 4088];
    /// <summary>The boot page tables identity-map this much (2 MiB pages); the buffer must end below it.</summary>
    public const ulong IdentityMappedBytes = 16UL << 30;
    public const ulong MaxBufferPages = (IdentityMappedBytes - BufferGpa) / PageSize;

    // ---- Writer command-line defaults ---------------------------------------------------------------------------
    public const ulong DefaultMb = 64;
    public const ulong DefaultSweeps = 4;
    public const ulong DefaultTscKhz = 2_000_000;
    public const ulong DefaultReportMs = 1000;
    public const ulong DefaultCpus = 1;
    /// <summary>APs that have not checked in this long (TSC) after the BSP releases them are left out.</summary>
    public const ulong ApCheckInTimeoutMs = 1000;
    /// <summary>Paced writers never burst more than this much backlog.</summary>
    public const ulong MaxBacklogMs = 10;
    /// <summary>At most this many FAIL lines are printed; all failures are counted.</summary>
    public const int MaxFailLines = 8;

    /// <summary>Serial line the hello guest prints (followed by '\n').</summary>
    public const string HelloLine = "Hello from MiniVmm guest";
}
