using System.Buffers.Binary;

namespace MiniVmm.Firmware.Boot;

/// <summary>
/// Builds the boot stub's data at image-generation time: GDT (+ pseudo-descriptor), per-vCPU 64-bit TSSs with an I/O
/// permission bitmap, and identity page tables. Pre-building them keeps the CPL0 code (run by KVM's instruction
/// emulator on kvm_pvm, docs/DESIGN.md §1) to a handful of instructions.
/// </summary>
public static class BootTables
{
    // Flat descriptors: P, S, G=1 (4 KiB granularity), limit 0xFFFFF. Code64 sets L=1 (and D=0); data sets D/B=1.
    public const ulong KernelCode64 = 0x00AF_9A00_0000_FFFF;
    public const ulong KernelData = 0x00CF_9200_0000_FFFF;
    public const ulong UserData = 0x00CF_F200_0000_FFFF;   // DPL3: usable as SS for iretq to CPL3
    public const ulong UserCode64 = 0x00AF_FA00_0000_FFFF;

    /// <summary>Page-table entry flags: present, writable, user. U/S must be set at every level or CPL3 faults.</summary>
    public const ulong PteFlags = 0x7;
    public const ulong PdeLargePage = 0x80;

    public static byte[] BuildGdt(BootLayout l)
    {
        var gdt = new byte[l.GdtSize];
        var s = gdt.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(s[BootLayout.KernelCode..], KernelCode64);
        BinaryPrimitives.WriteUInt64LittleEndian(s[BootLayout.KernelData..], KernelData);
        BinaryPrimitives.WriteUInt64LittleEndian(s[(BootLayout.UserData & ~3)..], UserData);
        BinaryPrimitives.WriteUInt64LittleEndian(s[(BootLayout.UserCode & ~3)..], UserCode64);
        for (int i = 0; i < l.MaxVcpus; i++)
            WriteTssDescriptor(s[(BootLayout.FirstTssSelector + 16 * i)..], l.TssAddress(i), BootLayout.TssLimit);
        return gdt;
    }

    /// <summary>16-byte system descriptor, type 9 (available 64-bit TSS), present, DPL0, byte granularity.</summary>
    public static void WriteTssDescriptor(Span<byte> d, ulong b, int limit)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(d, (ushort)limit);
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], (ushort)b);
        d[4] = (byte)(b >> 16);
        d[5] = 0x89;
        d[6] = (byte)((limit >> 16) & 0xF);
        d[7] = (byte)(b >> 24);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], (uint)(b >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], 0);
    }

    /// <summary>6-byte lgdt operand as read in 32-bit mode: u16 limit, u32 base.</summary>
    public static byte[] BuildGdtr(BootLayout l)
    {
        var r = new byte[6];
        BinaryPrimitives.WriteUInt16LittleEndian(r, (ushort)(l.GdtSize - 1));
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(2), checked((uint)l.Gdt));
        return r;
    }

    /// <summary>
    /// All TSSs back to back (stride <see cref="BootLayout.TssStride"/>). IOPL=3 is ignored for port I/O at CPL3 on
    /// this KVM, so the I/O permission bitmap is what lets CPL3 reach the serial, debug-exit and control ports: a clear
    /// bit allows the port. The bitmap is followed by a 0xFF byte inside the limit, as the CPU reads two bytes.
    /// </summary>
    public static byte[] BuildTssArea(BootLayout l)
    {
        var area = new byte[l.MaxVcpus * BootLayout.TssStride];
        for (int i = 0; i < l.MaxVcpus; i++)
        {
            var t = area.AsSpan(i * BootLayout.TssStride, BootLayout.TssLimit + 1);
            // RSP0: never used (no interrupts, no syscalls), but point it at this vCPU's stack rather than at 0.
            BinaryPrimitives.WriteUInt64LittleEndian(t[4..], l.StackTop(i));
            BinaryPrimitives.WriteUInt16LittleEndian(t[0x66..], BootLayout.TssHeaderSize); // I/O map base
            var bitmap = t.Slice(BootLayout.TssHeaderSize, BootLayout.IoBitmapPorts / 8 + 1);
            bitmap.Fill(0xFF);
            foreach (var (port, count) in l.UserPorts)
                for (int p = port; p < port + count; p++)
                {
                    if (p >= BootLayout.IoBitmapPorts)
                        throw new ArgumentException($"port 0x{p:x} is above the I/O bitmap");
                    bitmap[p / 8] &= (byte)~(1 << (p % 8));
                }
        }
        return area;
    }

    /// <summary>PML4 → one PDPT → <see cref="BootLayout.PdCount"/> PDs of 2 MiB pages, identity mapping
    /// [0, MappedBytes). Contiguous pages starting at <see cref="BootLayout.Pml4"/>.</summary>
    public static byte[] BuildPageTables(BootLayout l)
    {
        if (l.PdCount is < 1 or > 512)
            throw new ArgumentException("MappedBytes must be 1..512 GiB in whole GiB");
        var t = new byte[(2 + l.PdCount) * 0x1000];
        var s = t.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(s, l.Pdpt | PteFlags);
        for (int i = 0; i < l.PdCount; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[(0x1000 + 8 * i)..], (l.FirstPd + (ulong)i * 0x1000) | PteFlags);
            for (int j = 0; j < 512; j++)
            {
                ulong phys = ((ulong)i << 30) | ((ulong)j << 21);
                BinaryPrimitives.WriteUInt64LittleEndian(s[(0x2000 + i * 0x1000 + 8 * j)..], phys | PteFlags | PdeLargePage);
            }
        }
        return t;
    }
}
