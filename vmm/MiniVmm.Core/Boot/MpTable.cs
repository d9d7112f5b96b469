using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Core.Boot;

/// <summary>
/// An Intel MultiProcessor Specification 1.4 table: the floating pointer structure followed by the configuration table
/// (one processor entry per vCPU, an ISA bus, the IOAPIC, IOAPIC pins 0..23 as ISA IRQs 0..23, LINT0 = ExtINT,
/// LINT1 = NMI). Linux (<c>CONFIG_X86_MPPARSE</c>) finds it by scanning the last KiB of base memory (0x9fc00) and learns
/// from it how many CPUs there are and where the IOAPIC is, including the pins 16+ the virtio-mmio devices use.
/// </summary>
/// <remarks>
/// IRQ pin numbers are identity-mapped, as KVM's default routing maps GSI n to IOAPIC pin n (the in-kernel PIT is on
/// GSI 0). APIC ids are the vCPU indexes (what <c>CpuidTable</c> reports); the IOAPIC gets the next id.
/// </remarks>
public static class MpTable
{
    /// <summary>Where the table goes: the last KiB below 640 KiB, one of the places Linux scans.</summary>
    public const uint Address = 0x9fc00;

    /// <summary>The space reserved for it (0x9fc00-0x9ffff).</summary>
    public const int MaxSize = 0x400;

    public const uint LocalApicAddress = 0xfee00000;
    public const uint IoApicAddress = 0xfec00000;

    /// <summary>KVM's in-kernel IOAPIC has 24 pins.</summary>
    public const int IoApicPins = 24;

    private const int FloatingSize = 16;
    private const int HeaderSize = 44;
    private const int ProcessorEntrySize = 20;
    private const int SmallEntrySize = 8;

    /// <summary>The table bytes for <paramref name="vcpus"/> processors, to be written at <see cref="Address"/>.</summary>
    public static byte[] Build(int vcpus)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpus, 1);
        int entries = vcpus + 1 + 1 + IoApicPins + 2;
        int tableLength = HeaderSize + vcpus * ProcessorEntrySize + (entries - vcpus) * SmallEntrySize;
        int total = FloatingSize + tableLength;
        if (total > MaxSize)
            throw new ArgumentOutOfRangeException(nameof(vcpus), $"{vcpus} vCPUs need a {total}-byte MP table");
        byte[] t = new byte[total];
        Span<byte> floating = t.AsSpan(0, FloatingSize);
        Span<byte> table = t.AsSpan(FloatingSize);
        byte ioApicId = (byte)vcpus;

        // Floating pointer: "_MP_", physical address of the table, length in 16-byte units, spec 1.4, checksum,
        // feature byte 1 = 0 (a configuration table is present, no default configuration).
        Encoding.ASCII.GetBytes("_MP_", floating);
        BinaryPrimitives.WriteUInt32LittleEndian(floating[4..], Address + FloatingSize);
        floating[8] = 1;
        floating[9] = 4;

        Encoding.ASCII.GetBytes("PCMP", table);
        BinaryPrimitives.WriteUInt16LittleEndian(table[4..], (ushort)tableLength);
        table[6] = 4;
        Encoding.ASCII.GetBytes("MINIVMM ", table[8..16]);
        Encoding.ASCII.GetBytes("MINIVMM     ", table[16..28]);
        BinaryPrimitives.WriteUInt16LittleEndian(table[34..], (ushort)entries);
        BinaryPrimitives.WriteUInt32LittleEndian(table[36..], LocalApicAddress);

        int at = HeaderSize;
        for (int cpu = 0; cpu < vcpus; cpu++)
        {
            Span<byte> e = table.Slice(at, ProcessorEntrySize);
            e[0] = 0;                                     // processor
            e[1] = (byte)cpu;                             // local APIC id
            e[2] = 0x14;                                  // local APIC version (integrated xAPIC)
            e[3] = (byte)(cpu == 0 ? 0x3 : 0x1);          // enabled, BSP for vCPU 0
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], 0x600);  // signature: family 6
            BinaryPrimitives.WriteUInt32LittleEndian(e[8..], 0x201);  // features: FPU, APIC
            at += ProcessorEntrySize;
        }
        Span<byte> bus = table.Slice(at, SmallEntrySize);
        bus[0] = 1;                                       // bus
        bus[1] = 0;                                       // bus id
        Encoding.ASCII.GetBytes("ISA   ", bus[2..8]);
        at += SmallEntrySize;

        Span<byte> ioapic = table.Slice(at, SmallEntrySize);
        ioapic[0] = 2;                                    // I/O APIC
        ioapic[1] = ioApicId;
        ioapic[2] = 0x11;                                 // version (KVM's IOAPIC)
        ioapic[3] = 1;                                    // usable
        BinaryPrimitives.WriteUInt32LittleEndian(ioapic[4..], IoApicAddress);
        at += SmallEntrySize;

        for (int pin = 0; pin < IoApicPins; pin++)
        {
            Span<byte> e = table.Slice(at, SmallEntrySize);
            e[0] = 3;                                     // I/O interrupt assignment
            e[1] = 0;                                     // INT (vectored)
            // flags 0: polarity and trigger "conform to the bus" (ISA: active high, edge), which is what irqfd's
            // pulses and the 8250's line give.
            e[4] = 0;                                     // source bus: ISA
            e[5] = (byte)pin;                             // source bus IRQ
            e[6] = ioApicId;
            e[7] = (byte)pin;                             // IOAPIC pin
            at += SmallEntrySize;
        }
        WriteLocalInterrupt(table.Slice(at, SmallEntrySize), type: 3, destination: 0, lint: 0); // ExtINT -> BSP LINT0
        at += SmallEntrySize;
        WriteLocalInterrupt(table.Slice(at, SmallEntrySize), type: 1, destination: 0xff, lint: 1); // NMI -> all LINT1
        at += SmallEntrySize;

        table[7] = Checksum(table[..tableLength]);
        floating[10] = Checksum(floating);
        return t;
    }

    private static void WriteLocalInterrupt(Span<byte> e, byte type, byte destination, byte lint)
    {
        e[0] = 4;                                         // local interrupt assignment
        e[1] = type;
        e[4] = 0;                                         // source bus: ISA
        e[5] = 0;
        e[6] = destination;
        e[7] = lint;
    }

    /// <summary>The byte that makes the sum of <paramref name="bytes"/> zero (with that byte still 0 in them).</summary>
    private static byte Checksum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte b in bytes)
            sum += b;
        return (byte)(0 - sum);
    }
}
