using System.Buffers.Binary;
using System.Text;
using FluentAssertions;
using MiniVmm.Core.Boot;
using MiniVmm.Core.Boot.Acpi;
using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Tests.Boot.Acpi;

public sealed class AcpiTablesTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(64 << 20);

    public void Dispose() => _memory.Dispose();

    private static readonly VirtioMmioWindow[] TwoDevices = [new(0xd000_0000, 0x1000, 16), new(0xd000_1000, 0x1000, 17)];

    private AcpiReader ReaderOf(AcpiTableSet set)
    {
        _memory.Write(new GuestAddress(AcpiTables.Address), set.Bytes);
        return new AcpiReader((a, n) => { byte[] b = new byte[n]; _memory.Read(new GuestAddress(a), b); return b; });
    }

    private AcpiReader LoadedByLinuxLoader(int vcpus, IReadOnlyList<VirtioMmioWindow>? virtio)
    {
        var kernel = LinuxKernelImage.ParseBzImage(new BzImageBuilder().Build());
        LinuxLoader.Load(_memory, kernel, "", [], vcpus, virtio);
        return new AcpiReader((a, n) => { byte[] b = new byte[n]; _memory.Read(new GuestAddress(a), b); return b; });
    }

    [Fact]
    public void Linux_finds_the_rsdp_by_scanning_the_bios_area_and_in_boot_params()
    {
        AcpiReader acpi = LoadedByLinuxLoader(2, TwoDevices);

        acpi.ScanForRsdp().Should().Be(AcpiTables.Address);
        _memory.Read<ulong>(new GuestAddress(LinuxLoader.BootParamsGpa + LinuxSetupHeader.AcpiRsdpAddr)).Should().Be(AcpiTables.Address,
            "boot_params.acpi_rsdp_addr names the RSDP too");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(16)]
    public void Rsdp_and_xsdt_lead_to_every_table_with_valid_checksums_and_lengths(int vcpus)
    {
        AcpiTableSet set = AcpiTables.Build(vcpus, TwoDevices);
        AcpiReader acpi = ReaderOf(set);

        byte[] rsdp = new byte[36];
        _memory.Read(new GuestAddress(set.Rsdp), rsdp);
        AcpiReader.Sum(rsdp.AsSpan(0, 20)).Should().Be(0, "the ACPI 1.0 checksum");
        AcpiReader.Sum(rsdp).Should().Be(0, "the extended checksum");
        rsdp[15].Should().Be(2, "revision 2: an XSDT follows");
        BinaryPrimitives.ReadUInt32LittleEndian(rsdp.AsSpan(20)).Should().Be(36);
        ulong xsdt = BinaryPrimitives.ReadUInt64LittleEndian(rsdp.AsSpan(24));
        xsdt.Should().Be(set.Xsdt);

        acpi.XsdtEntries(xsdt).Should().BeEquivalentTo(new Dictionary<string, ulong> { ["FACP"] = set.Fadt, ["APIC"] = set.Madt });
        acpi.Table(set.Fadt, "FACP").Length.Should().Be(276, "the ACPI 6.0 FADT");
        acpi.Table(set.Madt, "APIC").Length.Should().Be(44 + 8 * vcpus + 12 + 6);
        acpi.Table(set.Dsdt, "DSDT");
        foreach (ulong a in new[] { set.Rsdp, set.Xsdt, set.Fadt, set.Madt, set.Dsdt })
            (a % 16).Should().Be(0);
        (AcpiTables.Address + (ulong)set.Bytes.Length).Should().BeLessThanOrEqualTo(AcpiTables.AreaEnd);
    }

    [Fact]
    public void The_tables_lie_in_the_area_the_e820_map_reserves()
    {
        AcpiTableSet set = AcpiTables.Build(16, TwoDevices);
        var reserved = LinuxLoader.MemoryMap(64 << 20).Single(e => e.Type == MemoryMapType.Reserved);
        AcpiTables.Address.Should().BeGreaterThanOrEqualTo(reserved.Address);
        (AcpiTables.Address + (ulong)set.Bytes.Length).Should().BeLessThanOrEqualTo(reserved.Address + reserved.Size);
        AcpiTables.Address.Should().BeGreaterThanOrEqualTo(MpTable.Address + MpTable.MaxSize, "clear of the MP table");
    }

    [Fact]
    public void Fadt_is_hardware_reduced_points_at_the_dsdt_resets_through_the_i8042_and_names_the_rtc_century()
    {
        AcpiTableSet set = AcpiTables.Build(1, []);
        byte[] f = ReaderOf(set).Table(set.Fadt, "FACP");

        f[8].Should().Be(6, "revision 6");
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(112));
        (flags & (1u << 20)).Should().NotBe(0, "HW_REDUCED_ACPI");
        (flags & (1u << 10)).Should().NotBe(0, "RESET_REG_SUP");
        BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(40)).Should().Be((uint)set.Dsdt, "DSDT");
        BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(140)).Should().Be(set.Dsdt, "X_DSDT");
        BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(46)).Should().Be(0, "no SCI");
        f.AsSpan(48, 4).ToArray().Should().OnlyContain(b => b == 0, "no SMI command port");
        f.AsSpan(56, 40).ToArray().Should().OnlyContain(b => b == 0, "no PM1/PM2/PM timer/GPE blocks");
        f.AsSpan(148, 120).ToArray().Should().OnlyContain(b => b == 0, "no extended PM/GPE/sleep registers");
        BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(132)).Should().Be(0, "no FACS (not needed when hardware-reduced)");
        ushort boot = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(109));
        boot.Should().Be((ushort)(Fadt.Has8042 | Fadt.VgaNotPresent), "an i8042, no VGA, and a CMOS RTC (CMOS_RTC_NOT_PRESENT clear)");
        (boot & Fadt.CmosRtcNotPresent).Should().Be(0);
        f[108].Should().Be(0x32, "CENTURY: the RTC's century register");
        f.AsSpan(116, 12).ToArray().Should().Equal([1, 8, 0, 1, 0x64, 0, 0, 0, 0, 0, 0, 0], "reset register: I/O port 0x64");
        f[128].Should().Be(0xfe, "the i8042's pulse-reset command");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(16)]
    public void Madt_lists_every_vcpu_and_the_ioapic(int vcpus)
    {
        AcpiTableSet set = AcpiTables.Build(vcpus, []);
        byte[] m = ReaderOf(set).Table(set.Madt, "APIC");

        BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(36)).Should().Be(0xfee00000, "the local APIC address");
        var cpus = new List<(byte Uid, byte ApicId, uint Flags)>();
        var ioapics = new List<(byte Id, uint Address, uint GsiBase)>();
        var nmis = new List<(byte Uid, byte Lint)>();
        int at = 44;
        while (at < m.Length)
        {
            byte type = m[at], length = m[at + 1];
            length.Should().BeGreaterThan(1);
            switch (type)
            {
                case 0: length.Should().Be(8); cpus.Add((m[at + 2], m[at + 3], BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(at + 4)))); break;
                case 1:
                    length.Should().Be(12);
                    ioapics.Add((m[at + 2], BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(at + 4)), BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(at + 8))));
                    break;
                case 4: length.Should().Be(6); nmis.Add((m[at + 2], m[at + 5])); break;
                default: throw new InvalidOperationException($"unexpected MADT entry type {type}");
            }
            at += length;
        }
        at.Should().Be(m.Length, "the entries fill the table exactly");
        cpus.Should().Equal(Enumerable.Range(0, vcpus).Select(i => ((byte)i, (byte)i, 1u)), "one enabled local APIC per vCPU, APIC id = index");
        ioapics.Should().Equal([((byte)vcpus, 0xfec00000u, 0u)], "the IOAPIC, id after the CPUs as in the MP table, GSI base 0");
        nmis.Should().Equal([((byte)0xff, (byte)1)], "NMI on LINT1 of every processor");
    }

    [Fact]
    public void Dsdt_describes_each_virtio_mmio_device_as_LNRO0005_with_its_window_and_interrupt()
    {
        AcpiTableSet set = AcpiTables.Build(1, TwoDevices);
        byte[] d = ReaderOf(set).Table(set.Dsdt, "DSDT");
        string text = Encoding.Latin1.GetString(d);

        text.Should().Contain("_SB_").And.Contain("VR00").And.Contain("VR01");
        CountOf(d, Encoding.ASCII.GetBytes("LNRO0005\0")).Should().Be(2);
        for (int i = 0; i < TwoDevices.Length; i++)
        {
            byte[] memory32Fixed = [0x86, 9, 0, 1, .. LittleEndian((uint)TwoDevices[i].Address), .. LittleEndian(TwoDevices[i].Size)];
            byte[] interrupt = [0x89, 6, 0, 0b0011, 1, .. LittleEndian(TwoDevices[i].Gsi)];
            CountOf(d, [.. memory32Fixed, .. interrupt, 0x79, 0]).Should().Be(1, $"device {i}'s _CRS: window, edge/high GSI, end tag");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(255)]
    public void Madt_refuses_vcpu_counts_it_cannot_number(int vcpus) =>
        FluentActions.Invoking(() => Madt.Build(vcpus)).Should().Throw<ArgumentOutOfRangeException>();

    [Fact]
    public void Dsdt_without_devices_is_an_empty_definition_block()
    {
        AcpiTableSet set = AcpiTables.Build(1, []);
        ReaderOf(set).Table(set.Dsdt, "DSDT").Length.Should().Be(36);
    }

    [Fact]
    public void Loader_leaves_the_mp_table_for_mpparse_kernels()
    {
        LoadedByLinuxLoader(2, null);
        byte[] floating = new byte[4];
        _memory.Read(new GuestAddress(MpTable.Address), floating);
        Encoding.ASCII.GetString(floating).Should().Be("_MP_");
    }

    private static byte[] LittleEndian(uint v) { byte[] b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }

    private static int CountOf(byte[] haystack, byte[] needle)
    {
        int n = 0;
        for (int i = haystack.AsSpan().IndexOf(needle); i >= 0;)
        {
            n++;
            int next = haystack.AsSpan(i + 1).IndexOf(needle);
            i = next < 0 ? -1 : i + 1 + next;
        }
        return n;
    }
}
