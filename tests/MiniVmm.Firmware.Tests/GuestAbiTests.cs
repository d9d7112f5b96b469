using System.Reflection;
using System.Text;
using MiniVmm.Firmware.Guests.Writer;

namespace MiniVmm.Firmware.Tests;

public class GuestAbiTests
{
    private static ElfFile Writer() => new(GuestImages.Writer());

    private static int[] Offsets(Type t) => t.GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral && f.FieldType == typeof(int)).Select(f => (int)f.GetRawConstantValue()!).ToArray();

    [Fact]
    public void Status_magic_is_MVSTATUS()
    {
        BitConverter.GetBytes(GuestAbi.StatusMagic).Should().Equal(Encoding.ASCII.GetBytes("MVSTATUS"));
    }

    [Fact]
    public void Status_fields_are_distinct_aligned_u64s_before_the_vcpu_blocks()
    {
        var header = Offsets(typeof(GuestAbi.Status)).Where(o => o != GuestAbi.Status.VcpuBlocks).ToArray();
        header.Should().OnlyHaveUniqueItems();
        header.Should().OnlyContain(o => o % 8 == 0 && o + 8 <= GuestAbi.Status.VcpuBlocks);
        var vcpu = Offsets(typeof(GuestAbi.VcpuStatus));
        vcpu.Should().OnlyHaveUniqueItems();
        vcpu.Should().OnlyContain(o => o % 8 == 0 && o + 8 <= GuestAbi.StatusVcpuBlockSize);
    }

    [Fact]
    public void Status_page_is_page_aligned_zero_and_inside_the_image()
    {
        (GuestAbi.StatusPageGpa % GuestAbi.PageSize).Should().Be(0);
        GuestAbi.VcpuBlockGpa(GuestAbi.MaxVcpus).Should().BeLessThanOrEqualTo(GuestAbi.StatusPageGpa + GuestAbi.PageSize);
        (GuestAbi.VcpuBlockGpa(1) % 64).Should().Be(0, "one cache line per vCPU");
        var elf = Writer();
        elf.ReadPhysical(GuestAbi.StatusPageGpa, GuestAbi.PageSize).Should().OnlyContain(b => b == 0);
    }

    [Fact]
    public void Buffer_is_above_the_image_and_below_the_identity_map()
    {
        var elf = Writer();
        ulong imageEnd = elf.Loads.Max(p => p.PAddr + p.MemSize);
        GuestAbi.BufferGpa.Should().BeGreaterThanOrEqualTo(imageEnd);
        (GuestAbi.BufferGpa % GuestAbi.PageSize).Should().Be(0);
        (GuestAbi.BufferGpa + GuestAbi.MaxBufferPages * GuestAbi.PageSize).Should().Be(GuestAbi.IdentityMappedBytes);
        (GuestAbi.DefaultMb * 256).Should().BeLessThanOrEqualTo(GuestAbi.MaxBufferPages);
        WriterLayout.Boot.MappedBytes.Should().Be(GuestAbi.IdentityMappedBytes);
    }

    [Fact]
    public void Checked_words_are_first_middle_last_in_write_order()
    {
        GuestAbi.CheckedWordOffsets.Should().HaveCountGreaterThanOrEqualTo(3);
        GuestAbi.CheckedWordOffsets[0].Should().Be(0);
        GuestAbi.CheckedWordOffsets[^1].Should().Be(GuestAbi.PageSize - 8);
        GuestAbi.CheckedWordOffsets.Should().BeInAscendingOrder();
    }

    [Fact]
    public void Image_layout_regions_do_not_overlap()
    {
        var l = WriterLayout.Boot;
        var regions = new (ulong Start, ulong End, string Name)[]
        {
            (l.Gdt, l.Gdt + (ulong)l.GdtSize, "gdt"),
            (l.Gdtr, l.Gdtr + 6, "gdtr"),
            (WriterLayout.Var.StartInfo, WriterLayout.Var.End, "vars"),
            (GuestAbi.StatusPageGpa, GuestAbi.StatusPageGpa + GuestAbi.PageSize, "status"),
            (l.TssBase, l.TssEnd, "tss"),
            (l.Pml4, l.PageTablesEnd, "page tables"),
            (WriterLayout.CodeBase, WriterLayout.CodeLimit, "code"),
            (l.StackBase, l.StackEnd, "stacks"),
        };
        var sorted = regions.OrderBy(r => r.Start).ToArray();
        for (int i = 1; i < sorted.Length; i++)
            sorted[i].Start.Should().BeGreaterThanOrEqualTo(sorted[i - 1].End, $"{sorted[i].Name} overlaps {sorted[i - 1].Name}");
        WriterLayout.Var.End.Should().BeLessThanOrEqualTo(GuestAbi.StatusPageGpa);
        sorted[0].Start.Should().BeGreaterThanOrEqualTo(GuestAbi.ImageBase);
        WriterLayout.ImageEnd.Should().Be(Writer().Loads.Max(p => p.PAddr + p.MemSize));
    }

    [Fact]
    public void Writer_code_fits_its_region()
    {
        var img = WriterGuest.BuildImage();
        img.CodeEnd.Should().BeLessThanOrEqualTo(WriterLayout.CodeLimit);
        img.Entry64.Should().BeGreaterThanOrEqualTo(WriterLayout.CodeBase);
    }
}
