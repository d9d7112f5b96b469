using System.Buffers.Binary;
using MiniVmm.Core.Boot.Acpi;
using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Boot;

/// <summary>What a vCPU needs to enter a kernel loaded by <see cref="LinuxLoader"/> with the 64-bit boot protocol:
/// long mode with paging on (CR3 = <see cref="PageTableRoot"/>), the GDT at <see cref="GdtBase"/> with __BOOT_CS = 0x10
/// and __BOOT_DS = 0x18, interrupts off, RIP = <see cref="Entry"/>, RSI = <see cref="BootParamsGpa"/>.</summary>
public sealed record LinuxBootInfo(ulong Entry, ulong BootParamsGpa, ulong PageTableRoot, ulong GdtBase, ushort GdtLimit,
    ulong StackPointer, ulong InitrdAddress, ulong InitrdSize);

/// <summary>
/// Loads a <see cref="LinuxKernelImage"/> (vmlinux or bzImage) with the Linux x86 64-bit boot protocol
/// (Documentation/arch/x86/boot.rst): the kernel at its load address, the <c>boot_params</c> zero page with the setup
/// header, command line, initrd and e820 map, an MP table and ACPI tables for the vCPUs, the IOAPIC and the virtio-mmio
/// devices, identity page tables for 0-4 GiB and the GDT the protocol names.
/// </summary>
/// <remarks>
/// Low memory layout (guest physical):
/// <code>
/// 0x00000-0x00fff  first page: left as it is (zeros: the BIOS data area reads as "no EBDA")
/// 0x01000-0x0101f  GDT: null, null, __BOOT_CS (0x10, 64-bit code), __BOOT_DS (0x18, flat data)  = GdtGpa
/// 0x02000-0x02fff  PML4                                                                          = Pml4Gpa
/// 0x03000-0x03fff  PDPT (4 entries)
/// 0x04000-0x07fff  4 page directories: 0-4 GiB identity-mapped with 2 MiB pages
/// 0x08000-0x08fff  boot stack (RSP = 0x9000 at entry)
/// 0x09000-0x09fff  boot_params, the zero page (RSI at entry)                                     = BootParamsGpa
/// 0x0a000-0x0afff  command line, NUL-terminated                                                  = CommandLineGpa
/// 0x9fc00-0x9ffff  MP table (e820: reserved)
/// 0xa0000-0xfffff  legacy VGA/BIOS hole (e820: reserved; RAM behind it is otherwise left unused)
/// 0xe0000-         ACPI: RSDP, XSDT, FADT, MADT, DSDT (AcpiTables; boot_params.acpi_rsdp_addr = 0xe0000)
/// 0x100000-        the kernel at its load address; the initrd page-aligned at the top of RAM below 4 GiB
/// </code>
/// These structures are in e820 RAM below 640 KiB, as with other VMMs: the kernel copies boot_params and the command
/// line and builds its own page tables early. Every check happens before the first write, so a rejected kernel leaves
/// guest RAM untouched.
/// </remarks>
public static class LinuxLoader
{
    public const ulong GdtGpa = 0x1000;
    public const ulong Pml4Gpa = 0x2000;
    public const ulong PdptGpa = 0x3000;
    public const ulong PageDirectoryGpa = 0x4000;
    public const ulong StackTop = 0x9000;
    public const ulong BootParamsGpa = 0x9000;
    public const ulong CommandLineGpa = 0xa000;
    /// <summary>End (exclusive) of the area below the MP table the loader writes.</summary>
    public const ulong BootAreaEnd = 0xb000;
    /// <summary>Space for the command line: 4095 bytes and the NUL.</summary>
    public const int CommandLineCapacity = 4095;
    public const ulong LegacyHoleStart = MpTable.Address;
    public const ulong LegacyHoleEnd = 0x100000;

    /// <summary>GDT entries: 4, the last two being __BOOT_CS and __BOOT_DS.</summary>
    public const ushort GdtLimit = 4 * 8 - 1;
    public const ushort BootCodeSelector = 0x10;
    public const ushort BootDataSelector = 0x18;

    /// <summary>Identity-mapped range: the kernel, the zero page and the command line lie below it.</summary>
    public const ulong IdentityMapEnd = 1UL << 32;

    private const ulong PagePresentWrite = 0x3;
    private const ulong PageSize2M = 0x80;

    /// <summary>The e820 map for <paramref name="ramSize"/> bytes of RAM laid out by <see cref="GuestMemoryLayout"/>.</summary>
    public static IReadOnlyList<MemoryMapEntry> MemoryMap(ulong ramSize) => MemoryMap(GuestMemoryLayout.RamRanges(ramSize));

    /// <summary>The e820 map for RAM in <paramref name="ranges"/> (address order, the first from 0): RAM below the MP
    /// table, the legacy hole reserved, RAM from 1 MiB, then every further range (RAM above the 32-bit MMIO hole).</summary>
    public static IReadOnlyList<MemoryMapEntry> MemoryMap(IReadOnlyList<(ulong GuestAddress, ulong Size)> ranges)
    {
        if (ranges.Count == 0 || ranges[0].GuestAddress != 0 || ranges[0].Size <= LegacyHoleEnd)
            throw new BootImageException($"guest RAM (0x{(ranges.Count == 0 ? 0 : ranges[0].Size):x} bytes from 0) ends below 1 MiB: a Linux kernel loads above it");
        return
        [
            MemoryMapEntry.Ram(0, LegacyHoleStart),
            MemoryMapEntry.Reserved(LegacyHoleStart, LegacyHoleEnd - LegacyHoleStart),
            MemoryMapEntry.Ram(LegacyHoleEnd, ranges[0].Size - LegacyHoleEnd),
            .. ranges.Skip(1).Select(r => MemoryMapEntry.Ram(r.GuestAddress, r.Size)),
        ];
    }

    /// <summary>Checks that everything fits, then writes the kernel, initrd, zero page, command line, MP table, ACPI
    /// tables (describing <paramref name="virtio"/>, none if null), page tables and GDT.</summary>
    /// <exception cref="BootImageException">Something does not fit; the message says what.</exception>
    public static LinuxBootInfo Load(GuestMemory memory, LinuxKernelImage kernel, string cmdline,
        ReadOnlySpan<byte> initrd, int vcpus, IReadOnlyList<VirtioMmioWindow>? virtio = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(cmdline);
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpus, 1);

        ulong ramSize = memory.Size;
        if (!memory.Contains(new GuestAddress(0), LegacyHoleEnd))
            throw new BootImageException($"guest RAM (0x{ramSize:x} bytes) does not cover the first MiB, where the " +
                                         "Linux boot data goes");
        var ranges = memory.Regions.Select(r => (r.GuestAddress.Value, r.Size)).ToList();
        IReadOnlyList<MemoryMapEntry> e820 = MemoryMap(ranges);
        byte[] cmdlineBytes = BootCommandLine.Encode(cmdline, kernel.CommandLineLimit,
            $"this kernel accepts at most {kernel.CommandLineLimit} (cmdline_size)");
        if (!memory.Contains(new GuestAddress(kernel.LoadAddress), kernel.KernelEnd - kernel.LoadAddress))
            throw new BootImageException(
                $"the kernel needs RAM up to 0x{kernel.KernelEnd:x} ({(kernel.KernelEnd + 0xfffff) >> 20} MiB: " +
                $"load address 0x{kernel.LoadAddress:x} + {(kernel.Format == LinuxImageFormat.BzImage ? "init_size" : "its segments")}" +
                $" 0x{kernel.KernelEnd - kernel.LoadAddress:x}); guest RAM is {ramSize >> 20} MiB (--mem)");
        if (kernel.KernelEnd > IdentityMapEnd)
            throw new BootImageException($"the kernel reaches 0x{kernel.KernelEnd:x}, above the 4 GiB the boot page tables map");
        // The initrd goes at the top of the RAM that starts at 0 (below the 32-bit MMIO hole, so below 4 GiB).
        (ulong initrdAddress, ulong initrdSize) = PlaceInitrd(ranges[0].Size, kernel, initrd.Length);
        byte[] mpTable = MpTable.Build(vcpus);
        AcpiTableSet acpi = AcpiTables.Build(vcpus, virtio ?? []);

        foreach (ImageSegment segment in kernel.Segments)
        {
            memory.Write(new GuestAddress(segment.PhysicalAddress), segment.Data.Span);
            ulong bss = segment.MemorySize - (ulong)segment.Data.Length;
            if (bss > 0)
                memory.Clear(new GuestAddress(segment.PhysicalAddress + (ulong)segment.Data.Length), bss);
        }
        if (initrdSize > 0)
            memory.Write(new GuestAddress(initrdAddress), initrd);

        memory.Clear(new GuestAddress(GdtGpa), BootAreaEnd - GdtGpa);
        WriteGdt(memory);
        WritePageTables(memory);
        memory.Write(new GuestAddress(CommandLineGpa), cmdlineBytes); // the area was zeroed: the NUL follows
        memory.Write(new GuestAddress(BootParamsGpa), BuildBootParams(kernel, initrdAddress, initrdSize, e820, acpi.Rsdp));
        memory.Clear(new GuestAddress(MpTable.Address), MpTable.MaxSize);
        memory.Write(new GuestAddress(MpTable.Address), mpTable);
        // Kernels with CONFIG_X86_MPPARSE read the MP table only when they find no ACPI MADT; ACPI-only kernels need
        // the ACPI tables to see more than one CPU and the IOAPIC.
        memory.Clear(new GuestAddress(AcpiTables.Address), AcpiTables.AreaEnd - AcpiTables.Address);
        memory.Write(new GuestAddress(AcpiTables.Address), acpi.Bytes);

        return new LinuxBootInfo(kernel.Entry, BootParamsGpa, Pml4Gpa, GdtGpa, GdtLimit, StackTop, initrdAddress, initrdSize);
    }

    /// <summary>The zero page: the kernel's setup header at 0x1f1, then what the loader fills in.</summary>
    internal static byte[] BuildBootParams(LinuxKernelImage kernel, ulong initrdAddress, ulong initrdSize,
        IReadOnlyList<MemoryMapEntry> e820, ulong rsdpAddress = 0)
    {
        byte[] zp = new byte[LinuxSetupHeader.BootParamsSize];
        kernel.SetupHeader.Span.CopyTo(zp.AsSpan(LinuxSetupHeader.Start));
        Span<byte> z = zp;
        z[LinuxSetupHeader.TypeOfLoader] = LinuxSetupHeader.UndefinedLoader;
        BinaryPrimitives.WriteUInt32LittleEndian(z[LinuxSetupHeader.Code32Start..], (uint)kernel.LoadAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(z[LinuxSetupHeader.CmdLinePtr..], (uint)CommandLineGpa);
        if (kernel.Format == LinuxImageFormat.Vmlinux)
            BinaryPrimitives.WriteUInt32LittleEndian(z[LinuxSetupHeader.CmdlineSize..], (uint)kernel.CommandLineLimit);
        BinaryPrimitives.WriteUInt32LittleEndian(z[LinuxSetupHeader.RamdiskImage..], (uint)initrdAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(z[LinuxSetupHeader.RamdiskSize..], (uint)initrdSize);
        BinaryPrimitives.WriteUInt64LittleEndian(z[LinuxSetupHeader.AcpiRsdpAddr..], rsdpAddress);
        if (e820.Count > LinuxSetupHeader.E820MaxEntries)
            throw new BootImageException($"the memory map has {e820.Count} entries; boot_params holds {LinuxSetupHeader.E820MaxEntries}");
        z[LinuxSetupHeader.E820Entries] = (byte)e820.Count;
        for (int i = 0; i < e820.Count; i++)
        {
            Span<byte> e = z.Slice(LinuxSetupHeader.E820Table + i * LinuxSetupHeader.E820EntrySize, LinuxSetupHeader.E820EntrySize);
            BinaryPrimitives.WriteUInt64LittleEndian(e, e820[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(e[8..], e820[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(e[16..], (uint)e820[i].Type);
        }
        return zp;
    }

    /// <summary>The initrd goes as high as it may (top of RAM, below 4 GiB and <c>initrd_addr_max</c>), page-aligned,
    /// above the kernel's footprint: what boot loaders do, so the kernel's early allocations find room below it.</summary>
    private static (ulong Address, ulong Size) PlaceInitrd(ulong lowRamEnd, LinuxKernelImage kernel, int length)
    {
        if (length == 0)
            return (0, 0);
        ulong size = (ulong)length;
        ulong top = Math.Min(Math.Min(lowRamEnd, kernel.InitrdAddressMax + 1), IdentityMapEnd);
        ulong room = top > kernel.KernelEnd ? top - kernel.KernelEnd : 0;
        if (size > room)
            throw new BootImageException(
                $"the initrd is {size} bytes ({size >> 20} MiB) but only {room} bytes ({room >> 20} MiB) are free " +
                $"between the kernel's end 0x{kernel.KernelEnd:x} and 0x{top:x} (the top of RAM or initrd_addr_max " +
                $"0x{kernel.InitrdAddressMax:x}): give the guest more --mem or a smaller initrd", BootInput.Initrd);
        ulong address = (top - size) & ~0xfffUL;
        if (address < kernel.KernelEnd)
            throw new BootImageException(
                $"the initrd ({size} bytes) does not fit page-aligned above the kernel's end 0x{kernel.KernelEnd:x}", BootInput.Initrd);
        return (address, size);
    }

    private static void WriteGdt(GuestMemory memory)
    {
        // 64-bit code: present, DPL 0, execute/read, L=1, G=1; data: present, read/write, D/B=1, G=1; base 0, limit 4 GiB.
        memory.Write(new GuestAddress(GdtGpa + BootCodeSelector), 0x00af9b000000ffffUL);
        memory.Write(new GuestAddress(GdtGpa + BootDataSelector), 0x00cf93000000ffffUL);
    }

    private static void WritePageTables(GuestMemory memory)
    {
        memory.Write(new GuestAddress(Pml4Gpa), PdptGpa | PagePresentWrite);
        for (ulong i = 0; i < 4; i++)
        {
            ulong pd = PageDirectoryGpa + i * 0x1000;
            memory.Write(new GuestAddress(PdptGpa + i * 8), pd | PagePresentWrite);
            ulong[] entries = new ulong[512];
            for (ulong j = 0; j < 512; j++)
                entries[j] = ((i * 512 + j) << 21) | PagePresentWrite | PageSize2M;
            memory.Write(new GuestAddress(pd), System.Runtime.InteropServices.MemoryMarshal.AsBytes(entries.AsSpan()));
        }
    }
}
