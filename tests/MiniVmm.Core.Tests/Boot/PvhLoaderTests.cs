using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using MiniVmm.Core.Boot;
using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Tests.Boot;

public sealed class PvhLoaderTests : IDisposable
{
    private const ulong RamSize = 16 << 20;
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(RamSize);
    private static readonly MemoryMapEntry[] DefaultMap = [MemoryMapEntry.Ram(0, RamSize)];

    public void Dispose() => _memory.Dispose();

    private byte[] ReadGuest(ulong gpa, int length) => _memory.ReadBytes(gpa, length);

    private void Scribble(ulong gpa, int length) => _memory.Scribble(gpa, length);

    private static PvhElfImage Image(ulong paddr, byte[] data, ulong memSize) =>
        PvhElfImage.Parse(new ElfBuilder().Load(paddr, data, memSize).PvhEntry(paddr).Build());

    [Fact]
    public void The_memory_map_reserves_the_acpi_tables_and_lists_ram_above_the_hole()
    {
        const ulong GiB = 1UL << 30;
        PvhLoader.MemoryMapFor([(0UL, 3 * GiB), (4 * GiB, GiB)]).Should().Equal(
            MemoryMapEntry.Ram(0, 0xe0000),
            MemoryMapEntry.Reserved(0xe0000, 0x20000),
            MemoryMapEntry.Ram(0x100000, 3 * GiB - 0x100000),
            MemoryMapEntry.Ram(4 * GiB, GiB));
    }

    [Fact]
    public void Layout_constants_describe_the_low_area()
    {
        PvhLoader.StartInfoGpa.Should().Be(0x6000u);
        PvhLoader.MemoryMapGpa.Should().Be(0x6038u);
        PvhLoader.CommandLineGpa.Should().Be(0x7000u);
        PvhLoader.MaxCommandLineBytes.Should().Be(4095);
        (PvhLoader.MemoryMapGpa + (ulong)(PvhLoader.MaxMemoryMapEntries * HvmMemoryMapEntry.Size))
            .Should().BeLessThanOrEqualTo(PvhLoader.CommandLineGpa);
        Unsafe.SizeOf<HvmStartInfo>().Should().Be(56);
        Unsafe.SizeOf<HvmMemoryMapEntry>().Should().Be(24);
    }

    [Fact]
    public void Load_copies_segments_and_zero_fills_bss()
    {
        Scribble(0x100000, 0x3000);
        PvhElfImage image = PvhElfImage.Parse(ElfBuilder.Minimal().Load(0x200000, [1, 2, 3], 0x10).Build());

        PvhBootInfo boot = PvhLoader.Load(_memory, image, "", DefaultMap);

        ReadGuest(0x100000, 64).Should().Equal(ElfBuilder.Code(64));
        ReadGuest(0x100040, 0x2000 - 64).Should().OnlyContain(b => b == 0);
        ReadGuest(0x102000, 16).Should().OnlyContain(b => b == 0xCC, "past memsz is not the loader's");
        ReadGuest(0x200000, 16).Should().Equal(1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        boot.Should().Be(new PvhBootInfo((uint)ElfBuilder.DefaultLoadAddress, null, 0x6000));
    }

    [Fact]
    public void Load_writes_hvm_start_info_bytes()
    {
        Scribble(0x6000, 0x2000);
        MemoryMapEntry[] map = [MemoryMapEntry.Ram(0, 0x9FC00), MemoryMapEntry.Reserved(0xF0000, 0x10000),
            MemoryMapEntry.Ram(0x100000, RamSize - 0x100000)];
        PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "console=ttyS0", map);

        byte[] info = ReadGuest(0x6000, 56);
        BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(0)).Should().Be(0x336ec578u, "magic");
        BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(4)).Should().Be(1u, "version");
        BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(8)).Should().Be(0u, "flags");
        BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(12)).Should().Be(0u, "nr_modules");
        BinaryPrimitives.ReadUInt64LittleEndian(info.AsSpan(16)).Should().Be(0ul, "modlist_paddr");
        BinaryPrimitives.ReadUInt64LittleEndian(info.AsSpan(24)).Should().Be(0x7000ul, "cmdline_paddr");
        BinaryPrimitives.ReadUInt64LittleEndian(info.AsSpan(32)).Should().Be(0ul, "rsdp_paddr");
        BinaryPrimitives.ReadUInt64LittleEndian(info.AsSpan(40)).Should().Be(0x6038ul, "memmap_paddr");
        BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(48)).Should().Be(3u, "memmap_entries");
        BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(52)).Should().Be(0u, "reserved");

        _memory.Read<HvmStartInfo>(new GuestAddress(0x6000)).Magic.Should().Be(HvmStartInfo.MagicValue);
    }

    [Fact]
    public void Load_writes_the_memory_map_after_start_info()
    {
        Scribble(0x6000, 0x2000);
        MemoryMapEntry[] map = [MemoryMapEntry.Ram(0x100000, 0x200000), MemoryMapEntry.Ram(0, 0x9FC00),
            new MemoryMapEntry(0xFEC00000, 0x1000, MemoryMapType.Reserved)];
        PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "", map);

        byte[] table = ReadGuest(0x6038, 3 * 24);
        for (int i = 0; i < map.Length; i++)
        {
            ReadOnlySpan<byte> e = table.AsSpan(i * 24, 24);
            BinaryPrimitives.ReadUInt64LittleEndian(e).Should().Be(map[i].Address);
            BinaryPrimitives.ReadUInt64LittleEndian(e[8..]).Should().Be(map[i].Size);
            BinaryPrimitives.ReadUInt32LittleEndian(e[16..]).Should().Be((uint)map[i].Type);
            BinaryPrimitives.ReadUInt32LittleEndian(e[20..]).Should().Be(0u);
        }
        ReadGuest(0x6038 + 3 * 24, 0x7000 - (0x6038 + 3 * 24)).Should().OnlyContain(b => b == 0,
            "the rest of the boot area is zeroed");
        _memory.Read<HvmMemoryMapEntry>(new GuestAddress(0x6038 + 24)).Type.Should().Be(1u);
    }

    [Fact]
    public void Load_writes_the_nul_terminated_command_line()
    {
        Scribble(0x7000, 0x1000);
        const string cmdline = "console=ttyS0 tsc_khz=2300000 écrit";
        PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), cmdline, DefaultMap);

        byte[] expected = Encoding.UTF8.GetBytes(cmdline);
        ReadGuest(0x7000, expected.Length + 1).Should().Equal([.. expected, 0]);
        ReadGuest(0x7000 + (ulong)expected.Length, 0x1000 - expected.Length).Should().OnlyContain(b => b == 0);
    }

    [Fact]
    public void Command_line_of_4095_bytes_fits_with_its_nul()
    {
        string cmdline = new('x', 4095);
        PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), cmdline, DefaultMap);
        ReadGuest(0x7FFE, 2).Should().Equal((byte)'x', 0);
        ReadGuest(0x8000, 1).Should().Equal(0);
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(100_000)]
    public void Command_line_over_4095_bytes_is_rejected(int length)
    {
        Action load = () => PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()),
            new string('x', length), DefaultMap);
        load.Should().Throw<BootImageException>()
            .WithMessage($"kernel command line is {length} bytes; the limit is 4095");
    }

    [Fact]
    public void Command_line_limit_counts_utf8_bytes()
    {
        string cmdline = new('é', 2048); // 4096 bytes
        Action load = () => PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), cmdline,
            DefaultMap);
        load.Should().Throw<BootImageException>().WithMessage("kernel command line is 4096 bytes; the limit is 4095");
    }

    [Fact]
    public void Command_line_with_nul_is_rejected()
    {
        Action load = () => PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "a\0b",
            DefaultMap);
        load.Should().Throw<BootImageException>().WithMessage("*NUL*");
    }

    [Fact]
    public void Ap_entry_is_passed_through()
    {
        PvhElfImage image = PvhElfImage.Parse(ElfBuilder.Minimal().ApEntry(0x100020).Build());
        PvhLoader.Load(_memory, image, "", DefaultMap).ApEntry.Should().Be(0x100020u);
    }

    [Theory]
    [InlineData(0xFF0000ul, 0x20000ul)]   // runs past the end of 16 MiB
    [InlineData(0x1000000ul, 0x1000ul)]   // starts at the end
    [InlineData(0x40000000ul, 0x1000ul)]  // far above
    public void Segments_outside_ram_are_rejected(ulong paddr, ulong memSize)
    {
        Action load = () => PvhLoader.Load(_memory, Image(paddr, [0x90], memSize), "", DefaultMap);
        load.Should().Throw<BootImageException>().WithMessage(
            $"segment 0x{paddr:x}-0x{paddr + memSize - 1:x} lies outside guest RAM (size 0x1000000 = 16 MiB)");
    }

    [Fact]
    public void Image_larger_than_ram_is_rejected_and_ram_left_untouched()
    {
        using GuestMemory small = GuestMemory.CreateAnonymous(4 << 20);
        small.Scribble(0x6000, 0x100);
        small.Scribble(0x100000, 0x100);
        PvhElfImage image = PvhElfImage.Parse(new ElfBuilder().Load(0x100000, ElfBuilder.Code(64), 8 << 20)
            .PvhEntry(0x100000).Build());

        Action load = () => PvhLoader.Load(small, image, "", [MemoryMapEntry.Ram(0, 4 << 20)]);
        load.Should().Throw<BootImageException>().WithMessage("segment 0x100000-0x8fffff lies outside guest RAM*");

        small.IsScribbled(0x6000, 0x100).Should().BeTrue("nothing is written before every check passed");
        small.IsScribbled(0x100000, 0x100).Should().BeTrue();
    }

    [Fact]
    public void Ram_too_small_for_the_boot_area_is_rejected()
    {
        using GuestMemory tiny = GuestMemory.CreateAnonymous(0x4000);
        Action load = () => PvhLoader.Load(tiny, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "",
            [MemoryMapEntry.Ram(0, 0x4000)]);
        load.Should().Throw<BootImageException>().WithMessage("guest RAM (size 0x4000) is too small*");
    }

    [Theory]
    [InlineData(0x0ul, 0x1000ul)]
    [InlineData(0x800ul, 0x1000ul)]
    public void Segments_in_the_first_page_are_rejected(ulong paddr, ulong memSize)
    {
        Action load = () => PvhLoader.Load(_memory, Image(paddr, [0x90], memSize), "", DefaultMap);
        load.Should().Throw<BootImageException>().WithMessage("*overlaps the first page (0x0-0xfff)*");
    }

    [Theory]
    [InlineData(0x5000ul, 0x1001ul)]
    [InlineData(0x6000ul, 0x10ul)]
    [InlineData(0x7FFFul, 0x1ul)]
    [InlineData(0x1000ul, 0x10000ul)]
    public void Segments_over_the_boot_information_area_are_rejected(ulong paddr, ulong memSize)
    {
        Action load = () => PvhLoader.Load(_memory, Image(paddr, [0x90], memSize), "", DefaultMap);
        load.Should().Throw<BootImageException>().WithMessage(
            $"segment 0x{paddr:x}-0x{paddr + memSize - 1:x} overlaps the PVH boot information area (0x6000-0x7fff)");
    }

    [Theory]
    [InlineData(0x1000ul, 0x5000ul)]
    [InlineData(0x8000ul, 0x1000ul)]
    public void Segments_next_to_the_reserved_areas_load(ulong paddr, ulong memSize)
    {
        PvhLoader.Load(_memory, Image(paddr, [0x90, 0x91], memSize), "", DefaultMap).Entry.Should().Be((uint)paddr);
        ReadGuest(paddr, 2).Should().Equal(0x90, 0x91);
    }

    [Fact]
    public void Empty_memory_map_is_rejected()
    {
        Action load = () => PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "", []);
        load.Should().Throw<BootImageException>().WithMessage("the memory map is empty");
    }

    [Fact]
    public void Memory_map_entry_count_is_bounded()
    {
        MemoryMapEntry[] map = Enumerable.Range(0, 129).Select(i => MemoryMapEntry.Ram((ulong)i << 20, 0x1000))
            .ToArray();
        Action load = () => PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "", map);
        load.Should().Throw<BootImageException>().WithMessage("the memory map has 129 entries; the limit is 128");

        PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "", map[..128]);
        _memory.Read<HvmStartInfo>(new GuestAddress(0x6000)).MemoryMapEntries.Should().Be(128u);
        _memory.Read<HvmMemoryMapEntry>(new GuestAddress(0x6038 + 127 * 24)).Address.Should().Be(127ul << 20);
    }

    public static TheoryData<MemoryMapEntry[], string> BadMemoryMaps() => new()
    {
        { [MemoryMapEntry.Ram(0, 0)], "memory map entry 0 at 0x0 has size 0" },
        { [MemoryMapEntry.Ram(0, 0x1000), MemoryMapEntry.Ram(ulong.MaxValue - 0xFFF, 0x1000)],
            "memory map entry 1: 0xfffffffffffff000 + 0x1000 overflows the address space" },
        { [new MemoryMapEntry(0, 0x1000, 0)], "memory map entry 0 at 0x0 has type 0" },
        { [MemoryMapEntry.Ram(0x100000, 0x100000), MemoryMapEntry.Ram(0, 0x100001)],
            "memory map entries 0x0+0x100001 and 0x100000+0x100000 overlap" },
    };

    [Theory]
    [MemberData(nameof(BadMemoryMaps))]
    public void Bad_memory_maps_are_rejected(MemoryMapEntry[] map, string message)
    {
        Action load = () => PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "", map);
        load.Should().Throw<BootImageException>().WithMessage(message);
    }

    [Fact]
    public void Acpi_tables_go_to_the_bios_area_and_rsdp_paddr_names_them()
    {
        var acpi = MiniVmm.Core.Boot.Acpi.AcpiTables.Build(2, []);
        PvhLoader.Load(_memory, PvhElfImage.Parse(ElfBuilder.Minimal().Build()), "", DefaultMap, acpi);

        ReadGuest(0xe0000, acpi.Bytes.Length).Should().Equal(acpi.Bytes);
        BinaryPrimitives.ReadUInt64LittleEndian(ReadGuest(PvhLoader.StartInfoGpa + 32, 8)).Should().Be(0xe0000ul, "rsdp_paddr");
    }

    [Fact]
    public void A_segment_over_the_acpi_tables_is_refused_before_anything_is_written()
    {
        var acpi = MiniVmm.Core.Boot.Acpi.AcpiTables.Build(1, []);
        Scribble(0xe0000, 0x100);
        PvhElfImage image = PvhElfImage.Parse(new ElfBuilder { Entry = 0x100000 }.Load(0x100000, ElfBuilder.Code(64), 0x1000)
            .Load(0xe0000, [1, 2, 3], 0x10).PvhEntry(0x100000).Build());

        Action load = () => PvhLoader.Load(_memory, image, "", DefaultMap, acpi);

        load.Should().Throw<BootImageException>().WithMessage("segment 0xe0000-0xe000f overlaps the ACPI tables*");
        ReadGuest(0xe0000, 0x100).Should().OnlyContain(b => b == 0xCC);
    }
}
