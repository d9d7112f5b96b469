using System.Buffers.Binary;

namespace MiniVmm.Core.Boot.Acpi;

/// <summary>
/// The Multiple APIC Description Table ("APIC", revision 5, ACPI 6.x §5.2.12): the local APIC address, then one
/// Processor Local APIC entry per vCPU (ACPI processor UID = APIC id = vCPU index, enabled), the IOAPIC at 0xfec00000
/// with GSI base 0 and id = vCPU count (as in the MP table), and LINT1 = NMI on every processor.
/// </summary>
/// <remarks>
/// No interrupt source overrides: KVM's default routing maps ISA IRQ n to IOAPIC pin n (GSI n), which is what ACPI
/// assumes for an ISA IRQ without an override (edge, active high), so the UART on IRQ 4 needs none; the virtio GSIs
/// 16+ get their trigger and polarity from their DSDT resources. xAPIC entries carry 8-bit APIC ids, enough for the
/// vCPU counts MiniVmm runs (CPU ids 0..253, the IOAPIC after them).
/// </remarks>
public static class Madt
{
    public const byte Revision = 5;
    public const uint LocalApicAddress = 0xfee00000;
    public const uint IoApicAddress = 0xfec00000;
    /// <summary>The MADT flag PCAT_COMPAT: the machine also has dual 8259 PICs (KVM's in-kernel irqchip does).</summary>
    public const uint PcAtCompatible = 1;

    public const byte LocalApicType = 0;
    public const byte IoApicType = 1;
    public const byte LocalApicNmiType = 4;
    public const int LocalApicEntrySize = 8;
    public const int IoApicEntrySize = 12;
    public const int LocalApicNmiEntrySize = 6;
    /// <summary>Header (36), local APIC address (4), flags (4).</summary>
    public const int EntriesOffset = AcpiTable.HeaderSize + 8;
    /// <summary>APIC ids 0..253 for the CPUs, the IOAPIC's after them, 0xff being the broadcast id.</summary>
    public const int MaxVcpus = 254;

    public static byte[] Build(int vcpus)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpus, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vcpus, MaxVcpus);
        int length = EntriesOffset + vcpus * LocalApicEntrySize + IoApicEntrySize + LocalApicNmiEntrySize;
        byte[] t = AcpiTable.Create("APIC", length, Revision, "MVMMAPIC");
        Span<byte> m = t;
        BinaryPrimitives.WriteUInt32LittleEndian(m[AcpiTable.HeaderSize..], LocalApicAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(m[(AcpiTable.HeaderSize + 4)..], PcAtCompatible);

        int at = EntriesOffset;
        for (int cpu = 0; cpu < vcpus; cpu++)
        {
            Span<byte> e = m.Slice(at, LocalApicEntrySize);
            e[0] = LocalApicType;
            e[1] = LocalApicEntrySize;
            e[2] = (byte)cpu;                                          // ACPI processor UID
            e[3] = (byte)cpu;                                          // APIC id (what CpuidTable reports)
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], 1);       // enabled
            at += LocalApicEntrySize;
        }
        Span<byte> io = m.Slice(at, IoApicEntrySize);
        io[0] = IoApicType;
        io[1] = IoApicEntrySize;
        io[2] = (byte)vcpus;                                           // IOAPIC id
        BinaryPrimitives.WriteUInt32LittleEndian(io[4..], IoApicAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(io[8..], 0);          // GSI base: pins 0..23 are GSIs 0..23
        at += IoApicEntrySize;

        Span<byte> nmi = m.Slice(at, LocalApicNmiEntrySize);
        nmi[0] = LocalApicNmiType;
        nmi[1] = LocalApicNmiEntrySize;
        nmi[2] = 0xff;                                                 // all processors
        BinaryPrimitives.WriteUInt16LittleEndian(nmi[3..], 0);         // polarity/trigger: conform to the bus
        nmi[5] = 1;                                                    // LINT1
        return AcpiTable.Seal(t);
    }
}
