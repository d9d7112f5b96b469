using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Core.Boot.Acpi;

/// <summary>
/// The Fixed ACPI Description Table, ACPI 6.0 layout (revision 6, 276 bytes, §5.2.9), for a <b>hardware-reduced</b>
/// platform: <see cref="HwReducedAcpi"/> tells the OS there is no PM timer, no PM1/GPE event and control blocks, no
/// SCI and no SMI command port, so every one of those fields stays 0 and nothing behind them needs emulating.
/// </summary>
/// <remarks>
/// What Linux does with it: ACPICA sets <c>acpi_gbl_reduced_hardware</c> from the flag and skips the fixed hardware
/// (no FACS needed, no ACPI mode switch, no SCI handler); x86 then skips the legacy timer set-up (PIT/HPET) and the
/// 8259 (<c>acpi_generic_reduced_hw_init</c>), which is what a KVM guest with kvm-clock and the LAPIC timer wants.
/// <c>IAPC_BOOT_ARCH</c> states what the machine has: an i8042 (MiniVmm's, used for reset) and no VGA; the
/// <c>CMOS_RTC_NOT_PRESENT</c> flag is clear because MiniVmm has an MC146818 RTC at ports 0x70/0x71, and
/// <c>CENTURY</c> names its century register (0x32), which Linux reads along with the year. The reset register is the i8042 command port (0x64 ← 0xfe), which MiniVmm
/// turns into a VM reset, so <c>reboot</c> works through ACPI. The DSDT address is in both the 32- and 64-bit fields.
/// </remarks>
public static class Fadt
{
    public const int Length = 276;
    public const byte Revision = 6;
    public const byte MinorRevision = 0;

    public const int DsdtOffset = 40;
    public const int CenturyOffset = 108;
    public const int IapcBootArchOffset = 109;
    public const int FlagsOffset = 112;
    public const int ResetRegisterOffset = 116;
    public const int ResetValueOffset = 128;
    public const int MinorRevisionOffset = 131;
    public const int XDsdtOffset = 140;
    public const int HypervisorVendorOffset = 268;

    // Flags (§5.2.9, table 5.10).
    public const uint PowerButtonIsControlMethod = 1u << 4;
    public const uint SleepButtonIsControlMethod = 1u << 5;
    public const uint ResetRegisterSupported = 1u << 10;
    public const uint HwReducedAcpi = 1u << 20;

    // IA-PC boot architecture flags (§5.2.9.3).
    public const ushort Has8042 = 1 << 1;
    public const ushort VgaNotPresent = 1 << 2;
    public const ushort CmosRtcNotPresent = 1 << 5;

    public const ushort I8042CommandPort = 0x64;
    public const byte I8042ResetCommand = 0xfe;

    /// <summary>The CMOS register that holds the century (MiniVmm's RTC, as QEMU's, keeps it at 0x32).</summary>
    public const byte CmosCenturyRegister = 0x32;

    public static byte[] Build(ulong dsdtAddress)
    {
        if (dsdtAddress > uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(dsdtAddress), "the DSDT must lie below 4 GiB");
        byte[] t = AcpiTable.Create("FACP", Length, Revision, "MVMMFACP");
        Span<byte> f = t;
        BinaryPrimitives.WriteUInt32LittleEndian(f[DsdtOffset..], (uint)dsdtAddress);
        f[CenturyOffset] = CmosCenturyRegister;
        BinaryPrimitives.WriteUInt16LittleEndian(f[IapcBootArchOffset..], Has8042 | VgaNotPresent);
        BinaryPrimitives.WriteUInt32LittleEndian(f[FlagsOffset..],
            HwReducedAcpi | PowerButtonIsControlMethod | SleepButtonIsControlMethod | ResetRegisterSupported);
        // Generic address structure: system I/O space, 8 bits wide, offset 0, byte access, port 0x64.
        Span<byte> reset = f.Slice(ResetRegisterOffset, 12);
        reset[0] = 1;
        reset[1] = 8;
        reset[2] = 0;
        reset[3] = 1;
        BinaryPrimitives.WriteUInt64LittleEndian(reset[4..], I8042CommandPort);
        f[ResetValueOffset] = I8042ResetCommand;
        f[MinorRevisionOffset] = MinorRevision;
        BinaryPrimitives.WriteUInt64LittleEndian(f[XDsdtOffset..], dsdtAddress);
        Encoding.ASCII.GetBytes("MINIVMM ", f.Slice(HypervisorVendorOffset, 8));
        return AcpiTable.Seal(t);
    }
}
