using System.Buffers.Binary;
using FluentAssertions;
using MiniVmm.Core.Boot;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Core.Tests.Boot;

public sealed class LinuxKernelImageTests
{
    private static void Rejects(byte[] file, string because, bool bzImage = true)
    {
        Action parse = bzImage ? () => LinuxKernelImage.ParseBzImage(file) : () => LinuxKernelImage.ParseVmlinux(file);
        parse.Should().Throw<BootImageException>().Which.Message.Should().Contain(because);
    }

    [Fact]
    public void Debian_bzImage_header_fields_are_read()
    {
        byte[] file = DebianKernel.Bytes();
        LinuxKernelImage image = LinuxKernelImage.ParseBzImage(file);

        int setupBytes = (file[0x1f1] + 1) * 512;
        image.Format.Should().Be(LinuxImageFormat.BzImage);
        image.ProtocolVersion.Should().BeGreaterThanOrEqualTo(0x020c);
        image.LoadAddress.Should().Be(BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(0x258)), "pref_address, 16 MiB in Debian");
        image.LoadAddress.Should().Be(0x1000000);
        (image.LoadAddress % BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(0x230))).Should().Be(0, "aligned to kernel_alignment");
        image.Entry.Should().Be(image.LoadAddress + 0x200, "startup_64");
        image.CommandLineLimit.Should().Be(2047, "Debian's cmdline_size");
        image.KernelEnd.Should().Be(image.LoadAddress + BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(0x260)), "init_size");
        image.InitrdAddressMax.Should().Be(0x7fffffff);
        image.Segments.Should().ContainSingle();
        image.Segments[0].Data.ToArray().Should().Equal(file[setupBytes..], "the protected-mode kernel, after the setup sectors");
        int headerEnd = 0x202 + file[0x201];
        image.SetupHeader.ToArray().Should().Equal(file[0x1f1..headerEnd]);
    }

    [Fact]
    public void Synthetic_bzImage_parses()
    {
        var b = new BzImageBuilder();
        LinuxKernelImage image = LinuxKernelImage.ParseBzImage(b.Build());
        image.LoadAddress.Should().Be(0x1000000);
        image.Entry.Should().Be(0x1000200);
        image.KernelEnd.Should().Be(0x1400000);
        image.Segments[0].Data.ToArray().Should().Equal(b.Kernel);
    }

    [Fact]
    public void Relocatable_kernel_loads_at_the_next_alignment_boundary()
    {
        var b = new BzImageBuilder { PrefAddress = 0x1100000, KernelAlignment = 0x1000000 };
        LinuxKernelImage.ParseBzImage(b.Build()).LoadAddress.Should().Be(0x2000000);
    }

    [Fact]
    public void Fixed_kernel_loads_at_pref_address()
    {
        var b = new BzImageBuilder { PrefAddress = 0x1100000, KernelAlignment = 0x1000000, Relocatable = false };
        LinuxKernelImage.ParseBzImage(b.Build()).LoadAddress.Should().Be(0x1100000);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(0x100)]
    [InlineData(0x205)]
    public void Truncated_header_is_rejected(int length)
    {
        byte[] file = new BzImageBuilder().Build()[..length];
        Rejects(file, "truncated");
    }

    [Fact]
    public void A_kernel_that_ends_before_its_64_bit_entry_is_rejected()
    {
        byte[] file = new BzImageBuilder().Build()[..(5 * 512 + 0x100)]; // 0x100 kernel bytes; startup_64 is at +0x200
        Rejects(file, "ends before its 64-bit entry at +0x200");
    }

    [Fact]
    public void Header_cut_before_init_size_is_rejected()
    {
        byte[] file = new BzImageBuilder().Build()[..0x240];
        Rejects(file, "truncated bzImage: the file is 576 bytes, the setup header ends at 0x26c");
    }

    [Fact]
    public void File_without_a_protected_mode_kernel_is_rejected()
    {
        var b = new BzImageBuilder { Kernel = [] };
        Rejects(b.Build(), "no protected-mode kernel after the 4 setup sectors");
    }

    [Fact]
    public void Bad_magic_is_rejected()
    {
        byte[] file = DebianKernel.Bytes();
        file[0x202] = (byte)'X';
        Rejects(file, "bad magic: no \"HdrS\" at 0x202");
    }

    [Fact]
    public void Bad_boot_flag_is_rejected()
    {
        byte[] file = new BzImageBuilder().Build();
        file[0x1fe] = 0;
        Rejects(file, "bad boot flag");
    }

    [Theory]
    [InlineData(0x0200)]
    [InlineData(0x020a)]
    [InlineData(0x020b)]
    public void Protocol_too_old_is_rejected(ushort version)
    {
        byte[] file = DebianKernel.Bytes();
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x206), version);
        Rejects(file, $"boot protocol 2.{version & 0xff:d2} is too old: 2.12 or later is needed");
    }

    [Fact]
    public void Thirty_two_bit_only_kernel_is_rejected()
    {
        byte[] file = DebianKernel.Bytes();
        file[0x236] &= 0xfe; // clear XLF_KERNEL_64
        Rejects(file, "no 64-bit entry (XLF_KERNEL_64 is clear");
    }

    [Fact]
    public void ZImage_is_rejected()
    {
        Rejects(new BzImageBuilder { LoadFlags = 0 }.Build(), "no LOADED_HIGH");
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0x3000u)]
    [InlineData(0x800u)]
    public void Bad_kernel_alignment_is_rejected(uint alignment)
    {
        Rejects(new BzImageBuilder { KernelAlignment = alignment }.Build(), "kernel_alignment");
    }

    [Fact]
    public void Init_size_below_the_kernel_is_rejected()
    {
        Rejects(new BzImageBuilder { InitSize = 0x1000 }.Build(), "init_size 0x1000 is smaller than the protected-mode kernel");
    }

    [Theory]
    [InlineData(0x80000UL)]
    [InlineData(0x100000000UL)]
    public void Pref_address_outside_1M_4G_is_rejected(ulong pref)
    {
        Rejects(new BzImageBuilder { PrefAddress = pref }.Build(), "pref_address");
    }

    [Fact]
    public void Zero_cmdline_size_is_rejected()
    {
        Rejects(new BzImageBuilder { CmdlineSize = 0 }.Build(), "cmdline_size is 0");
    }

    [Fact]
    public void Large_cmdline_size_is_capped_at_the_loader_buffer()
    {
        LinuxKernelImage.ParseBzImage(new BzImageBuilder { CmdlineSize = 0x10000 }.Build()).CommandLineLimit
            .Should().Be(LinuxLoader.CommandLineCapacity);
    }

    [Fact]
    public void Vmlinux_elf_is_read()
    {
        byte[] code = ElfBuilder.Code(0x100);
        byte[] file = new ElfBuilder { Entry = 0x1000040 }.Load(0x1000000, code, 0x5000).Load(0x1200000, code).Build();
        LinuxKernelImage image = LinuxKernelImage.ParseVmlinux(file);
        image.Format.Should().Be(LinuxImageFormat.Vmlinux);
        image.Entry.Should().Be(0x1000040);
        image.LoadAddress.Should().Be(0x1000000);
        image.KernelEnd.Should().Be(0x1200100);
        image.CommandLineLimit.Should().Be(2047);
        image.Segments.Select(s => s.PhysicalAddress).Should().Equal(0x1000000UL, 0x1200000UL);
        image.SetupHeader.Span[0x202 - 0x1f1].Should().Be((byte)'H');
    }

    [Fact]
    public void Vmlinux_with_entry_outside_the_segments_is_rejected()
    {
        byte[] file = new ElfBuilder { Entry = 0xffffffff81000000 }.Load(0x1000000, ElfBuilder.Code(0x100)).Build();
        Rejects(file, "not inside a loaded segment", bzImage: false);
    }

    [Fact]
    public void Vmlinux_below_1M_is_rejected()
    {
        byte[] file = new ElfBuilder().Load(0x80000, ElfBuilder.Code(0x100)).Build();
        Rejects(file, "below 1 MiB", bzImage: false);
    }

    [Fact]
    public void Elf32_without_pvh_note_is_rejected_as_32_bit()
    {
        byte[] file = new ElfBuilder(ElfClass.Elf32).Load(0x100000, ElfBuilder.Code(0x100)).Build();
        Rejects(file, "a 32-bit kernel needs a PVH note", bzImage: false);
    }

    [Fact]
    public void Truncated_vmlinux_is_rejected()
    {
        byte[] file = new ElfBuilder().Load(0x1000000, ElfBuilder.Code(0x100)).Build()[..40];
        Rejects(file, "truncated ELF header", bzImage: false);
    }
}
