using MiniVmm.Core.Boot;
using static MiniVmm.Core.Tests.Boot.ElfBuilder;

namespace MiniVmm.Core.Tests.Boot;

public sealed class PvhElfImageTests
{
    private static string Rejection(byte[] file)
    {
        PvhElfImage.TryParse(file, out PvhElfImage? image, out string? error).Should().BeFalse();
        image.Should().BeNull();
        Action parse = () => PvhElfImage.Parse(file);
        parse.Should().Throw<BootImageException>().Which.Message.Should().Be(error);
        return error!;
    }

    [Theory]
    [InlineData(ElfClass.Elf64)]
    [InlineData(ElfClass.Elf32)]
    public void Minimal_image_parses(ElfClass elfClass)
    {
        PvhElfImage image = PvhElfImage.Parse(Minimal(elfClass).Build());

        image.Class.Should().Be(elfClass);
        image.Machine.Should().Be(elfClass == ElfClass.Elf64 ? (ushort)62 : (ushort)3);
        image.Entry.Should().Be((uint)DefaultLoadAddress);
        image.ApEntry.Should().BeNull();
        image.ElfEntry.Should().Be(DefaultLoadAddress);
        image.Segments.Should().ContainSingle();
        ImageSegment segment = image.Segments[0];
        segment.PhysicalAddress.Should().Be(DefaultLoadAddress);
        segment.MemorySize.Should().Be(0x2000);
        segment.EndAddress.Should().Be(DefaultLoadAddress + 0x2000);
        segment.Data.ToArray().Should().Equal(Code(64));
    }

    [Theory]
    [InlineData(4, 4)]
    [InlineData(8, 4)]
    [InlineData(4, 8)]
    [InlineData(8, 8)]
    public void Pvh_note_descriptor_may_be_4_or_8_bytes_in_4_or_8_aligned_notes(int size, int align)
    {
        var builder = new ElfBuilder { NoteAlign = (ulong)align }
            .Load(0x200000, Code(32)).Note("GNU", 3, [1, 2, 3]).PvhEntry(0x200010, size);
        PvhElfImage.Parse(builder.Build()).Entry.Should().Be(0x200010u);
    }

    [Fact]
    public void Note_names_without_nul_are_accepted()
    {
        byte[] file = new ElfBuilder { NoteNamesWithoutNul = true }.Load(0x200000, Code(32)).PvhEntry(0x200000)
            .ApEntry(0x200008).Build();
        PvhElfImage image = PvhElfImage.Parse(file);
        image.Entry.Should().Be(0x200000u);
        image.ApEntry.Should().Be(0x200008u);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void Ap_entry_note_is_read(int size)
    {
        byte[] file = Minimal().ApEntry(DefaultLoadAddress + 0x20, size).Build();
        PvhElfImage.Parse(file).ApEntry.Should().Be((uint)DefaultLoadAddress + 0x20);
    }

    [Fact]
    public void Other_notes_and_other_xen_note_types_are_ignored()
    {
        byte[] file = new ElfBuilder().Load(0x100000, Code(16))
            .Note("Xen", 1, new byte[8])          // XEN_ELFNOTE_ENTRY
            .Note("Linux", 18, new byte[4])       // right type, wrong owner
            .Note("Xenon", 18, new byte[4])
            .Note("MiniVmm", 2, new byte[4])
            .PvhEntry(0x100004).Build();
        PvhElfImage image = PvhElfImage.Parse(file);
        image.Entry.Should().Be(0x100004u);
        image.ApEntry.Should().BeNull();
    }

    [Fact]
    public void Segments_are_sorted_and_empty_ones_skipped()
    {
        byte[] file = new ElfBuilder()
            .Load(0x300000, Code(16), 0x100)
            .Load(0x500000, [], 0)
            .Load(0x100000, Code(8), 0x10)
            .PvhEntry(0x100000).Build();
        PvhElfImage image = PvhElfImage.Parse(file);
        image.Segments.Select(s => s.PhysicalAddress).Should().Equal(0x100000ul, 0x300000ul);
    }

    [Fact]
    public void Adjacent_segments_are_fine()
    {
        byte[] file = new ElfBuilder().Load(0x100000, Code(16), 0x1000).Load(0x101000, Code(16))
            .PvhEntry(0x101000).Build();
        PvhElfImage.Parse(file).Segments.Should().HaveCount(2);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x7F, (byte)'E', (byte)'L' })]
    [InlineData(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'G', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0x4D, 0x5A, 0x90, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0 })]
    public void Non_elf_files_are_rejected(byte[] file)
    {
        Rejection(file).Should().Be("not an ELF file (bad magic)");
    }

    [Theory]
    [InlineData(ElfClass.Elf64, 63)]
    [InlineData(ElfClass.Elf64, 16)]
    [InlineData(ElfClass.Elf32, 51)]
    public void Truncated_headers_are_rejected(ElfClass elfClass, int length)
    {
        byte[] file = Minimal(elfClass).Build()[..length];
        Rejection(file).Should().StartWith("truncated ELF header");
    }

    [Fact]
    public void Wrong_class_is_rejected()
    {
        byte[] file = Minimal().Build();
        file[4] = 3;
        Rejection(file).Should().Be("unsupported ELF class 3 (expected 1 = ELF32 or 2 = ELF64)");
    }

    [Fact]
    public void Big_endian_is_rejected()
    {
        byte[] file = Minimal().Build();
        file[5] = 2;
        Rejection(file).Should().Contain("not little-endian");
    }

    [Fact]
    public void Wrong_version_is_rejected()
    {
        byte[] file = Minimal().Build();
        file[6] = 0;
        Rejection(file).Should().Contain("ELF version 0");
    }

    [Theory]
    [InlineData((ushort)40)]  // EM_ARM
    [InlineData((ushort)183)] // EM_AARCH64
    [InlineData((ushort)0)]
    public void Wrong_machine_is_rejected(ushort machine)
    {
        byte[] file = new ElfBuilder { Machine = machine }.Load(0x100000, Code(8)).PvhEntry(0x100000).Build();
        Rejection(file).Should().Be($"ELF machine {machine} is not x86 (EM_386 = 3 or EM_X86_64 = 62)");
    }

    [Fact]
    public void Elf32_may_carry_either_x86_machine()
    {
        byte[] file = new ElfBuilder(ElfClass.Elf32) { Machine = 62 }.Load(0x100000, Code(8)).PvhEntry(0x100000, 4)
            .Build();
        PvhElfImage.Parse(file).Machine.Should().Be(62);
    }

    [Theory]
    [InlineData((ushort)1)] // ET_REL
    [InlineData((ushort)3)] // ET_DYN
    [InlineData((ushort)4)] // ET_CORE
    public void Non_executables_are_rejected(ushort type)
    {
        byte[] file = new ElfBuilder { Type = type }.Load(0x100000, Code(8)).PvhEntry(0x100000).Build();
        Rejection(file).Should().StartWith($"ELF type {type} is not ET_EXEC");
    }

    [Theory]
    [InlineData(0ul, "ELF has no program headers")]
    [InlineData(0xFFFFul, "ELF uses extended program header numbering (PN_XNUM), which is not supported")]
    [InlineData(257ul, "ELF has 257 program headers; the limit is 256")]
    public void Bad_program_header_counts_are_rejected(ulong count, string message)
    {
        byte[] file = Minimal().Build();
        PatchHeader(file, HeaderField.ProgramHeaderCount, count);
        Rejection(file).Should().Be(message);
    }

    [Theory]
    [InlineData(ElfClass.Elf64, 32ul)]
    [InlineData(ElfClass.Elf64, 64ul)]
    [InlineData(ElfClass.Elf32, 56ul)]
    public void Wrong_program_header_size_is_rejected(ElfClass elfClass, ulong size)
    {
        byte[] file = Minimal(elfClass).Build();
        PatchHeader(file, HeaderField.ProgramHeaderEntrySize, size);
        Rejection(file).Should().StartWith($"ELF program header entry size is {size}");
    }

    [Theory]
    [InlineData(ElfClass.Elf64, 0x10000ul)]
    [InlineData(ElfClass.Elf64, ulong.MaxValue - 8)]
    [InlineData(ElfClass.Elf32, 0xFFFFFFF0ul)]
    public void Program_headers_outside_the_file_are_rejected(ElfClass elfClass, ulong offset)
    {
        byte[] file = Minimal(elfClass).Build();
        PatchHeader(file, HeaderField.ProgramHeaderOffset, offset);
        Rejection(file).Should().Contain("lie outside the file");
    }

    [Fact]
    public void Program_headers_running_past_the_end_are_rejected()
    {
        byte[] file = Minimal().Build();
        PatchHeader(file, HeaderField.ProgramHeaderCount, 200);
        Rejection(file).Should().StartWith("program headers (offset 0x40, 200 x 56 bytes) lie outside the file");
    }

    [Theory]
    [InlineData(ElfClass.Elf64, ProgramHeaderField.Offset, 0x100000ul)]
    [InlineData(ElfClass.Elf64, ProgramHeaderField.Offset, ulong.MaxValue)]
    [InlineData(ElfClass.Elf64, ProgramHeaderField.FileSize, 0x10000ul)]
    [InlineData(ElfClass.Elf32, ProgramHeaderField.Offset, 0xFFFFFFFFul)]
    public void Segment_file_ranges_outside_the_file_are_rejected(ElfClass elfClass, ProgramHeaderField field,
        ulong value)
    {
        byte[] file = Minimal(elfClass).Build();
        PatchProgramHeader(file, 0, ProgramHeaderField.MemorySize, 0x100000);
        PatchProgramHeader(file, 0, field, value);
        Rejection(file).Should().MatchRegex(@"^program header 0: file bytes 0x[0-9a-f]+\+0x[0-9a-f]+ lie outside the file \(\d+ bytes\)$");
    }

    [Fact]
    public void File_size_larger_than_memory_size_is_rejected()
    {
        byte[] file = Minimal().Build();
        PatchProgramHeader(file, 0, ProgramHeaderField.MemorySize, 0x20);
        Rejection(file).Should().Be("program header 0: file size 0x40 is larger than memory size 0x20");
    }

    [Fact]
    public void Missing_pvh_note_is_rejected()
    {
        byte[] file = new ElfBuilder().Load(0x100000, Code(8)).Note("Xen", 1, new byte[8]).Build();
        Rejection(file).Should().Be("ELF has no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH image");
        byte[] noNotes = new ElfBuilder().Load(0x100000, Code(8)).Build();
        Rejection(noNotes).Should().Be("ELF has no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH image");
    }

    [Fact]
    public void Missing_load_segments_are_rejected()
    {
        byte[] file = new ElfBuilder().Load(0x100000, [], 0).PvhEntry(0x100000).Build();
        Rejection(file).Should().Be("ELF has no PT_LOAD segments with a non-zero size");
    }

    [Theory]
    [InlineData(0x100000ul, 0x100000ul)]
    [InlineData(0x100000ul, 0x100FFFul)]
    [InlineData(0x100800ul, 0x100000ul)]
    public void Overlapping_segments_are_rejected(ulong first, ulong second)
    {
        byte[] file = new ElfBuilder().Load(first, Code(16), 0x1000).Load(second, Code(16), 0x1000)
            .PvhEntry(first).Build();
        Rejection(file).Should().MatchRegex(@"^segment 0x[0-9a-f]+-0x[0-9a-f]+ and segment 0x[0-9a-f]+-0x[0-9a-f]+ overlap$");
    }

    [Theory]
    [InlineData(0x0FFFFFul)]
    [InlineData(0x100040ul)] // in bss: no code there
    [InlineData(0x102000ul)]
    public void Entry_outside_loaded_bytes_is_rejected(ulong entry)
    {
        byte[] file = new ElfBuilder().Load(0x100000, Code(64), 0x2000).PvhEntry(entry).Build();
        Rejection(file).Should().Be($"PVH entry 0x{entry:x} is not inside a loaded segment");
    }

    [Fact]
    public void Ap_entry_outside_loaded_bytes_is_rejected()
    {
        byte[] file = Minimal().ApEntry(0x500000).Build();
        Rejection(file).Should().Be("MiniVmm AP entry 0x500000 is not inside a loaded segment");
    }

    [Fact]
    public void Entry_above_4_gib_is_rejected()
    {
        byte[] file = new ElfBuilder().Load(0x100000, Code(8)).PvhEntry(0x1_0010_0000).Build();
        Rejection(file).Should().Be("PVH entry 0x100100000 is above 4 GiB: the PVH entry runs in 32-bit mode");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(16)]
    public void Pvh_note_with_a_bad_descriptor_size_is_rejected(int size)
    {
        byte[] file = new ElfBuilder().Load(0x100000, Code(8)).Note("Xen", 18, new byte[size]).Build();
        Rejection(file).Should().Be($"XEN_ELFNOTE_PHYS32_ENTRY descriptor is {size} bytes; expected 4 or 8");
    }

    [Fact]
    public void Ap_note_with_a_bad_descriptor_size_is_rejected()
    {
        byte[] file = Minimal().Note("MiniVmm", 1, new byte[6]).Build();
        Rejection(file).Should().Be("MiniVmm AP entry note descriptor is 6 bytes; expected 4 or 8");
    }

    [Fact]
    public void Duplicate_notes_are_rejected()
    {
        Rejection(Minimal().PvhEntry(DefaultLoadAddress).Build())
            .Should().Be("ELF has more than one XEN_ELFNOTE_PHYS32_ENTRY note");
        Rejection(Minimal().ApEntry(DefaultLoadAddress).ApEntry(DefaultLoadAddress).Build())
            .Should().Be("ELF has more than one MiniVmm AP entry note");
    }

    [Fact]
    public void Truncated_notes_are_rejected()
    {
        ElfBuilder builder = Minimal();
        byte[] file = builder.Build();
        // The note segment is program header 1; cut it inside the descriptor of its single note.
        PatchProgramHeader(file, 1, ProgramHeaderField.FileSize, 12 + 4 + 4);
        Rejection(file).Should().StartWith("truncated ELF note at file offset");

        file = builder.Build();
        PatchProgramHeader(file, 1, ProgramHeaderField.FileSize, 8);
        Rejection(file).Should().StartWith("truncated ELF note header at file offset");
    }

    [Fact]
    public void Note_with_a_huge_descriptor_size_is_rejected()
    {
        byte[] file = new ElfBuilder().Load(0x100000, Code(8)).Note("Xen", 18, new byte[8]).Build();
        // descsz of the first note: note segment offset + 4.
        int noteOffset = (int)BitConverter.ToUInt64(file, 64 + 56 + 8);
        BitConverter.GetBytes(uint.MaxValue).CopyTo(file, noteOffset + 4);
        Rejection(file).Should().StartWith("truncated ELF note at file offset");
    }

    [Fact]
    public void Note_segment_outside_the_file_is_rejected()
    {
        byte[] file = Minimal().Build();
        PatchProgramHeader(file, 1, ProgramHeaderField.Offset, 0xFFFF_FFFF_0000);
        Rejection(file).Should().StartWith("program header 1 (PT_NOTE): bytes 0xffffffff0000+");
    }

    [Fact]
    public void Note_count_is_bounded()
    {
        var builder = new ElfBuilder().Load(0x100000, Code(8)).PvhEntry(0x100000);
        for (int i = 0; i < PvhElfImage.MaxNotes; i++)
            builder.Note("", 0, []);
        Rejection(builder.Build()).Should().Be("ELF has more than 1024 notes");
    }

    [Theory]
    [InlineData(ElfClass.Elf64, 0xFFFF_FFFF_FFFF_F000ul, 0x2000ul, "64-bit")]
    [InlineData(ElfClass.Elf64, 0xFFFF_FFFF_FFFF_F000ul, 0x1000ul, "64-bit")]
    [InlineData(ElfClass.Elf32, 0xFFFF_F000ul, 0x2000ul, "32-bit")]
    public void Address_overflow_is_rejected(ElfClass elfClass, ulong paddr, ulong memSize, string bits)
    {
        byte[] file = Minimal(elfClass).Build();
        PatchProgramHeader(file, 0, ProgramHeaderField.PhysicalAddress, paddr);
        PatchProgramHeader(file, 0, ProgramHeaderField.MemorySize, memSize);
        Rejection(file).Should().Be(
            $"program header 0: address 0x{paddr:x} + size 0x{memSize:x} overflows the {bits} address space");
    }

    [Fact]
    public void Elf32_segment_ending_at_4_gib_is_accepted()
    {
        byte[] file = new ElfBuilder(ElfClass.Elf32).Load(0xFFFF_F000, Code(16), 0x1000).PvhEntry(0xFFFF_F000, 4)
            .Build();
        PvhElfImage.Parse(file).Segments[0].EndAddress.Should().Be(0x1_0000_0000);
    }

    [Fact]
    public void Every_truncation_of_a_valid_file_is_rejected_cleanly()
    {
        byte[] file = Minimal().ApEntry(DefaultLoadAddress + 4).Build();
        PvhElfImage.TryParse(file, out _, out _).Should().BeTrue();
        for (int length = 0; length < file.Length; length++)
        {
            // Trailing bytes past the last segment may be alignment padding; everything else must fail cleanly.
            bool ok = PvhElfImage.TryParse(file.AsSpan(0, length), out PvhElfImage? image, out string? error);
            (ok ? image is not null && error is null : image is null && error is not null).Should().BeTrue();
        }
    }

    [Theory]
    [InlineData(101)]
    [InlineData(102)]
    [InlineData(103)]
    public void Random_corruption_never_throws_from_try_parse(int seed)
    {
        var random = new Random(seed);
        byte[] original = Minimal(seed % 2 == 0 ? ElfClass.Elf32 : ElfClass.Elf64)
            .Load(0x400000, Code(100), 0x3000).ApEntry(0x400010).Build();
        int accepted = 0;
        for (int iteration = 0; iteration < 5_000; iteration++)
        {
            byte[] file = (byte[])original.Clone();
            int flips = random.Next(1, 6);
            for (int f = 0; f < flips; f++)
            {
                int at = random.Next(Math.Min(file.Length, random.Next(2) == 0 ? 256 : file.Length));
                file[at] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => 0xFF,
                    _ => 0,
                };
            }
            if (PvhElfImage.TryParse(file, out PvhElfImage? image, out string? error))
            {
                accepted++;
                image.Segments.Should().NotBeEmpty();
                foreach (ImageSegment s in image.Segments)
                    ((ulong)s.Data.Length).Should().BeLessThanOrEqualTo(s.MemorySize);
                image.Segments.Should().Contain(s => image.Entry >= s.PhysicalAddress &&
                                                     image.Entry < s.PhysicalAddress + (ulong)s.Data.Length);
            }
            else
            {
                error.Should().NotBeNullOrWhiteSpace();
            }
        }
        accepted.Should().BeGreaterThan(0, "some flips land in bytes that do not matter");
    }
}
