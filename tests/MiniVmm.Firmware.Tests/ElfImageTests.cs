using System.Buffers.Binary;
using MiniVmm.Firmware.Elf;

namespace MiniVmm.Firmware.Tests;

public class ElfImageTests
{
    public static TheoryData<string> Images => new() { "hello", "writer" };

    private static ElfFile Load(string name) => new(name == "hello" ? GuestImages.Hello() : GuestImages.Writer());

    [Theory]
    [MemberData(nameof(Images))]
    public void Header_is_elf64_x86_64_exec(string name)
    {
        var elf = Load(name);
        elf.Class.Should().Be(2);
        elf.Data.Should().Be(1);
        elf.Type.Should().Be(2);
        elf.Machine.Should().Be(62);
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Load_segments_are_identity_mapped_above_1MiB_and_congruent(string name)
    {
        var elf = Load(name);
        elf.Loads.Should().NotBeEmpty();
        foreach (var p in elf.Loads)
        {
            p.PAddr.Should().BeGreaterThanOrEqualTo(GuestAbi.ImageBase);
            p.PAddr.Should().Be(p.VAddr);
            p.MemSize.Should().BeGreaterThanOrEqualTo(p.FileSize);
            (p.Offset % 0x1000).Should().Be(p.PAddr % 0x1000);
            (p.Offset + p.FileSize).Should().BeLessThanOrEqualTo((ulong)elf.Bytes.Length);
        }
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Xen_phys32_note_points_into_a_file_backed_segment_and_matches_e_entry(string name)
    {
        var elf = Load(name);
        elf.Phdrs.Count(p => p.Type == Elf64Writer.PtNote).Should().Be(1);
        elf.Phdrs.Single(p => p.Type == Elf64Writer.PtNote).Align.Should().Be(4, "QEMU pads note names to p_align");
        var note = elf.Notes.Single(n => n.Type == GuestAbi.XenElfNotePhys32Entry);
        note.Name.Should().Be("Xen");
        note.Desc.Should().HaveCount(8);
        ulong entry = elf.NoteU64("Xen", GuestAbi.XenElfNotePhys32Entry);
        entry.Should().BeLessThan(1UL << 32);
        entry.Should().Be(elf.Entry);
        elf.IsFileBacked(entry, 1).Should().BeTrue();
    }

    [Fact]
    public void Xen_note_is_first_so_qemu_finds_it_by_type()
    {
        Load("writer").Notes[0].Type.Should().Be(GuestAbi.XenElfNotePhys32Entry);
    }

    [Fact]
    public void Writer_has_a_MiniVmm_ap_entry_note_inside_its_code()
    {
        var elf = Load("writer");
        var note = elf.Notes.Single(n => n.Name == GuestAbi.MiniVmmNoteName);
        note.Type.Should().Be(GuestAbi.MiniVmmNoteApEntry);
        note.Desc.Should().HaveCount(8);
        ulong ap = elf.NoteU64(GuestAbi.MiniVmmNoteName, GuestAbi.MiniVmmNoteApEntry);
        elf.IsFileBacked(ap, 1).Should().BeTrue();
        ap.Should().NotBe(elf.Entry);
    }

    [Fact]
    public void Hello_has_no_ap_note_and_contains_its_line()
    {
        var elf = Load("hello");
        elf.Notes.Should().ContainSingle();
        var seg = elf.Loads.Single();
        var text = System.Text.Encoding.ASCII.GetString(elf.Bytes, (int)seg.Offset, (int)seg.FileSize);
        text.Should().Contain(GuestAbi.HelloLine + "\n");
    }

    [Fact]
    public void Images_are_deterministic()
    {
        GuestImages.Writer().Should().Equal(GuestImages.Writer());
        GuestImages.Hello().Should().Equal(GuestImages.Hello());
    }

    [Fact]
    public void Note_encoding_pads_name_and_descriptor_to_4()
    {
        var bytes = Elf64Writer.EncodeNotes([ElfNote.U64("Xen", 18, 0x1234), new ElfNote("MiniVmm", 1, [1, 2, 3])]);
        // "Xen\0" is 4 bytes: descriptor right after the 12-byte header + 4 (what QEMU computes with p_align 4).
        BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16)).Should().Be(0x1234);
        bytes.Length.Should().Be(12 + 4 + 8 + 12 + 8 + 4);
    }

    [Fact]
    public void Writer_rejects_memsz_smaller_than_filesz()
    {
        var act = () => Elf64Writer.Write(0x100000, [new ElfSegment(0x100000, new byte[16], 8)], []);
        act.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void WriteAll_and_FirmwareCommand_write_both_images()
    {
        var dir = Path.Combine(Path.GetTempPath(), "minivmm-fw-" + Guid.NewGuid().ToString("N"));
        try
        {
            var outw = new StringWriter();
            FirmwareCommand.Run(["--out", dir], outw, new StringWriter()).Should().Be(0);
            File.ReadAllBytes(Path.Combine(dir, GuestImages.HelloFileName)).Should().Equal(GuestImages.Hello());
            File.ReadAllBytes(Path.Combine(dir, GuestImages.WriterFileName)).Should().Equal(GuestImages.Writer());
            outw.ToString().Should().Contain(GuestImages.WriterFileName);
            // Lets a developer grab the images for QEMU: MINIVMM_FIRMWARE_OUT=/some/dir dotnet test ...
            if (Environment.GetEnvironmentVariable("MINIVMM_FIRMWARE_OUT") is { Length: > 0 } extra)
                GuestImages.WriteAll(extra);
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void FirmwareCommand_without_out_is_a_usage_error()
    {
        var err = new StringWriter();
        FirmwareCommand.Run([], new StringWriter(), err).Should().Be(2);
        err.ToString().Should().Contain("usage");
    }
}
