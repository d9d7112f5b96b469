using System.Buffers.Binary;
using System.Text;
using FluentAssertions;
using MiniVmm.Core.Boot;
using MiniVmm.Tests.Shared;
using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Tests.Boot;

public sealed class LinuxLoaderTests : IDisposable
{
    private const ulong RamSize = 128 << 20;
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(RamSize);

    public void Dispose() => _memory.Dispose();

    private byte[] ReadGuest(ulong gpa, int length) => _memory.ReadBytes(gpa, length);

    private void Scribble(ulong gpa, int length) => _memory.Scribble(gpa, length);

    private bool IsScribble(ulong gpa, int length) => _memory.IsScribbled(gpa, length);

    private static byte[] Initrd(int length) => Enumerable.Range(0, length).Select(i => (byte)(i * 7 + 1)).ToArray();

    [Fact]
    public void Memory_map_reserves_the_legacy_hole() =>
        LinuxLoader.MemoryMap(RamSize).Should().Equal(
            MemoryMapEntry.Ram(0, 0x9fc00),
            MemoryMapEntry.Reserved(0x9fc00, 0x60400),
            MemoryMapEntry.Ram(0x100000, RamSize - 0x100000));

    [Fact]
    public void Debian_bzImage_lands_byte_for_byte()
    {
        byte[] file = DebianKernel.Bytes();
        LinuxKernelImage kernel = LinuxKernelImage.ParseBzImage(file);
        // Bytes the loader must not touch: between its boot area and the MP table, and between 1 MiB and the kernel.
        Scribble(LinuxLoader.BootAreaEnd, 0x1000);
        Scribble(0x9f000, 0xc00);
        Scribble(0x100000, 0x1000);
        Scribble(kernel.KernelEnd, 0x1000);
        const string cmdline = "console=ttyS0 earlyprintk=ttyS0 nokaslr";
        byte[] initrd = Initrd(0x12345);

        LinuxBootInfo boot = LinuxLoader.Load(_memory, kernel, cmdline, initrd, vcpus: 2);

        int setupBytes = (file[0x1f1] + 1) * 512;
        ReadGuest(0x1000000, file.Length - setupBytes).Should().Equal(file[setupBytes..], "the protected-mode kernel at pref_address");
        boot.Entry.Should().Be(0x1000200);
        boot.BootParamsGpa.Should().Be(0x9000);

        byte[] zp = ReadGuest(0x9000, 4096);
        int headerEnd = 0x202 + file[0x201];
        byte[] expectedHeader = file[0x1f1..headerEnd];
        // What the loader fills in, over the kernel's header:
        expectedHeader[0x210 - 0x1f1] = 0xff;                                                  // type_of_loader
        BinaryPrimitives.WriteUInt32LittleEndian(expectedHeader.AsSpan(0x214 - 0x1f1), 0x1000000); // code32_start
        BinaryPrimitives.WriteUInt32LittleEndian(expectedHeader.AsSpan(0x218 - 0x1f1), (uint)boot.InitrdAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(expectedHeader.AsSpan(0x21c - 0x1f1), 0x12345);
        BinaryPrimitives.WriteUInt32LittleEndian(expectedHeader.AsSpan(0x228 - 0x1f1), 0xa000);  // cmd_line_ptr
        zp[0x1f1..headerEnd].Should().Equal(expectedHeader);
        BinaryPrimitives.ReadUInt64LittleEndian(zp.AsSpan(0x070)).Should().Be(0xe0000, "acpi_rsdp_addr: the RSDP");
        zp[..0x070].Should().OnlyContain(b => b == 0, "screen_info, apm_bios_info etc. stay zero");
        zp[0x078..0x1e8].Should().OnlyContain(b => b == 0, "the ext_* fields etc. stay zero");
        zp[headerEnd..0x2d0].Should().OnlyContain(b => b == 0);

        zp[0x1e8].Should().Be(3, "e820_entries");
        ReadE820(zp, 3).Should().Equal(LinuxLoader.MemoryMap(RamSize));
        zp[(0x2d0 + 3 * 20)..].Should().OnlyContain(b => b == 0);

        ReadGuest(0xa000, cmdline.Length + 1).Should().Equal([.. Encoding.ASCII.GetBytes(cmdline), 0]);

        boot.InitrdAddress.Should().Be((RamSize - 0x12345) & ~0xfffUL, "page-aligned at the top of RAM");
        boot.InitrdSize.Should().Be(0x12345);
        ReadGuest(boot.InitrdAddress, initrd.Length).Should().Equal(initrd);

        ReadGuest(MpTable.Address, MpTable.Build(2).Length).Should().Equal(MpTable.Build(2));
        byte[] acpi = MiniVmm.Core.Boot.Acpi.AcpiTables.Build(2, []).Bytes;
        ReadGuest(0xe0000, acpi.Length).Should().Equal(acpi, "the ACPI tables in the BIOS area");

        IsScribble(LinuxLoader.BootAreaEnd, 0x1000).Should().BeTrue();
        IsScribble(0x9f000, 0xc00).Should().BeTrue();
        IsScribble(0x100000, 0x1000).Should().BeTrue();
        IsScribble(kernel.KernelEnd, 0x1000).Should().BeTrue("init_size is the decompressor's space, not written");
    }

    private static List<MemoryMapEntry> ReadE820(byte[] zp, int count)
    {
        var list = new List<MemoryMapEntry>();
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = zp.AsSpan(0x2d0 + 20 * i, 20);
            list.Add(new MemoryMapEntry(BinaryPrimitives.ReadUInt64LittleEndian(e), BinaryPrimitives.ReadUInt64LittleEndian(e[8..]),
                (MemoryMapType)BinaryPrimitives.ReadUInt32LittleEndian(e[16..])));
        }
        return list;
    }

    [Fact]
    public void Page_tables_identity_map_4G_and_gdt_has_the_boot_selectors()
    {
        LinuxBootInfo boot = LinuxLoader.Load(_memory, LinuxKernelImage.ParseBzImage(new BzImageBuilder().Build()), "", [], 1);
        boot.PageTableRoot.Should().Be(0x2000);
        _memory.Read<ulong>(new GuestAddress(0x2000)).Should().Be(0x3003UL);
        for (ulong i = 0; i < 4; i++)
        {
            _memory.Read<ulong>(new GuestAddress(0x3000 + 8 * i)).Should().Be(0x4003 + 0x1000 * i);
            for (ulong j = 0; j < 512; j += 97)
                _memory.Read<ulong>(new GuestAddress(0x4000 + 0x1000 * i + 8 * j)).Should().Be(((i * 512 + j) << 21) | 0x83);
        }
        boot.GdtBase.Should().Be(0x1000);
        boot.GdtLimit.Should().Be(31);
        _memory.Read<ulong>(new GuestAddress(0x1000)).Should().Be(0);
        _memory.Read<ulong>(new GuestAddress(0x1008)).Should().Be(0);
        _memory.Read<ulong>(new GuestAddress(0x1010)).Should().Be(0x00af9b000000ffffUL, "__BOOT_CS: 64-bit code, flat");
        _memory.Read<ulong>(new GuestAddress(0x1018)).Should().Be(0x00cf93000000ffffUL, "__BOOT_DS: flat data");
        boot.StackPointer.Should().Be(0x9000);
    }

    [Fact]
    public void Vmlinux_segments_land_with_bss_zeroed_and_header_filled()
    {
        byte[] code = ElfBuilder.Code(0x100);
        byte[] file = new ElfBuilder { Entry = 0x1000010 }.Load(0x1000000, code, 0x3000).Load(0x1400000, code).Build();
        Scribble(0x1000000, 0x4000);
        LinuxBootInfo boot = LinuxLoader.Load(_memory, LinuxKernelImage.ParseVmlinux(file), "root=/dev/vda", Initrd(100), 1);

        boot.Entry.Should().Be(0x1000010);
        ReadGuest(0x1000000, 0x100).Should().Equal(code);
        ReadGuest(0x1000100, 0x2f00).Should().OnlyContain(b => b == 0, "bss");
        IsScribble(0x1003000, 0x1000).Should().BeTrue();
        ReadGuest(0x1400000, 0x100).Should().Equal(code);
        byte[] zp = ReadGuest(0x9000, 4096);
        BinaryPrimitives.ReadUInt16LittleEndian(zp.AsSpan(0x1fe)).Should().Be(0xAA55);
        BinaryPrimitives.ReadUInt32LittleEndian(zp.AsSpan(0x202)).Should().Be(0x53726448u);
        zp[0x210].Should().Be(0xff);
        BinaryPrimitives.ReadUInt32LittleEndian(zp.AsSpan(0x228)).Should().Be(0xa000u);
        BinaryPrimitives.ReadUInt32LittleEndian(zp.AsSpan(0x238)).Should().Be(2047u);
        BinaryPrimitives.ReadUInt32LittleEndian(zp.AsSpan(0x218)).Should().Be((uint)boot.InitrdAddress);
        BinaryPrimitives.ReadUInt32LittleEndian(zp.AsSpan(0x21c)).Should().Be(100u);
    }

    [Fact]
    public void Ram_above_the_mmio_hole_is_an_e820_entry_and_the_initrd_stays_below_the_hole()
    {
        const ulong GiB = 1UL << 30;
        using var large = GuestMemory.CreateAnonymous(5 * GiB); // 3 GiB from 0, 2 GiB from 4 GiB; untouched, so not allocated
        LinuxKernelImage kernel = LinuxKernelImage.ParseBzImage(new BzImageBuilder().Build());
        LinuxBootInfo boot = LinuxLoader.Load(large, kernel, "", Initrd(0x3000), 1);
        byte[] zp = new byte[4096];
        large.Read(new GuestAddress(0x9000), zp);
        zp[0x1e8].Should().Be(4, "e820_entries");
        ReadE820(zp, 4).Should().Equal(
            MemoryMapEntry.Ram(0, 0x9fc00),
            MemoryMapEntry.Reserved(0x9fc00, 0x60400),
            MemoryMapEntry.Ram(0x100000, 3 * GiB - 0x100000),
            MemoryMapEntry.Ram(4 * GiB, 2 * GiB));
        // At the top of the RAM below the hole or of initrd_addr_max, whichever is lower: never in the RAM above 4 GiB.
        boot.InitrdAddress.Should().Be(Math.Min(3 * GiB, kernel.InitrdAddressMax + 1) - 0x3000);
    }

    [Fact]
    public void Init_size_larger_than_ram_is_rejected_and_ram_left_untouched()
    {
        using var small = GuestMemory.CreateAnonymous(64 << 20);
        LinuxKernelImage kernel = LinuxKernelImage.ParseBzImage(DebianKernel.Bytes());
        Action load = () => LinuxLoader.Load(small, kernel, "", [], 1);
        load.Should().Throw<BootImageException>().Which.Message.Should()
            .Contain("the kernel needs RAM up to").And.Contain("init_size").And.Contain("guest RAM is 64 MiB");
        byte[] page = new byte[4096];
        small.Read(new GuestAddress(0x9000), page);
        page.Should().OnlyContain(b => b == 0);
    }

    [Fact]
    public void Initrd_too_big_is_rejected()
    {
        LinuxKernelImage kernel = LinuxKernelImage.ParseBzImage(new BzImageBuilder().Build()); // ends at 20 MiB
        Scribble(0x9000, 0x1000);
        Action load = () => LinuxLoader.Load(_memory, kernel, "", new byte[(int)(RamSize - 0x1400000) + 1], 1);
        load.Should().Throw<BootImageException>().Which.Message.Should().Contain("the initrd is").And.Contain("more --mem");
        IsScribble(0x9000, 0x1000).Should().BeTrue("nothing is written when a check fails");
    }

    [Fact]
    public void Initrd_that_just_fits_lands_right_after_the_kernel()
    {
        LinuxKernelImage kernel = LinuxKernelImage.ParseBzImage(new BzImageBuilder().Build());
        LinuxBootInfo boot = LinuxLoader.Load(_memory, kernel, "", new byte[(int)(RamSize - 0x1400000)], 1);
        boot.InitrdAddress.Should().Be(0x1400000);
    }

    [Fact]
    public void Initrd_stays_below_initrd_addr_max()
    {
        LinuxKernelImage kernel = LinuxKernelImage.ParseBzImage(new BzImageBuilder { InitrdAddrMax = 0x2ffffff }.Build());
        LinuxBootInfo boot = LinuxLoader.Load(_memory, kernel, "", Initrd(0x2000), 1);
        boot.InitrdAddress.Should().Be(0x3000000 - 0x2000);
    }

    [Fact]
    public void Command_line_at_cmdline_size_fits_and_one_more_byte_is_rejected()
    {
        LinuxKernelImage kernel = LinuxKernelImage.ParseBzImage(DebianKernel.Bytes());
        LinuxLoader.Load(_memory, kernel, new string('a', 2047), [], 1);
        ReadGuest(0xa000 + 2047, 1).Should().Equal([0]);

        Action load = () => LinuxLoader.Load(_memory, kernel, new string('a', 2048), [], 1);
        load.Should().Throw<BootImageException>().WithMessage("kernel command line is 2048 bytes; this kernel accepts at most 2047 (cmdline_size)");
    }

    [Fact]
    public void Command_line_with_nul_is_rejected()
    {
        Action load = () => LinuxLoader.Load(_memory, LinuxKernelImage.ParseBzImage(new BzImageBuilder().Build()), "a\0b", [], 1);
        load.Should().Throw<BootImageException>().WithMessage("*NUL*");
    }
}
