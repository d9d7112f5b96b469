using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Firmware.Elf;

/// <summary>One PT_LOAD segment: <see cref="Data"/> is loaded at <see cref="PhysicalAddress"/> (== vaddr) and the rest
/// up to <see cref="MemorySize"/> is zero (bss).</summary>
public sealed record ElfSegment(ulong PhysicalAddress, byte[] Data, ulong MemorySize, ElfSegmentFlags Flags = ElfSegmentFlags.All);

[Flags]
public enum ElfSegmentFlags : uint
{
    Execute = 1,
    Write = 2,
    Read = 4,
    All = Execute | Write | Read,
}

/// <summary>One ELF note; the name is stored NUL-terminated, both name and descriptor padded to 4 bytes.</summary>
public sealed record ElfNote(string Name, uint Type, byte[] Descriptor)
{
    /// <summary>A note whose descriptor is a little-endian u64 (the form Linux uses for PHYS32_ENTRY in ELF64).</summary>
    public static ElfNote U64(string name, uint type, ulong value)
    {
        var d = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(d, value);
        return new ElfNote(name, type, d);
    }
}

/// <summary>
/// Writes a minimal ELF64 x86-64 ET_EXEC: header, program headers (PT_LOADs then one PT_NOTE holding all notes), note
/// data, then each segment's bytes at a page-aligned file offset congruent to its address. No section headers: boot
/// loaders (QEMU's, ours) only read program headers.
/// </summary>
public static class Elf64Writer
{
    public const int EhdrSize = 64;
    public const int PhdrSize = 56;
    public const uint PtLoad = 1;
    public const uint PtNote = 4;
    private const ulong SegmentAlign = 0x1000;

    public static byte[] Write(ulong entry, IReadOnlyList<ElfSegment> segments, IReadOnlyList<ElfNote> notes)
    {
        ArgumentOutOfRangeException.ThrowIfZero(segments.Count);
        int phnum = segments.Count + (notes.Count > 0 ? 1 : 0);
        byte[] noteBytes = EncodeNotes(notes);
        ulong noteOffset = (ulong)(EhdrSize + phnum * PhdrSize);

        // Segment file offsets: page aligned and congruent to the address modulo the page size, as loaders expect.
        var offsets = new ulong[segments.Count];
        ulong cursor = noteOffset + (ulong)noteBytes.Length;
        for (int i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            if (s.MemorySize < (ulong)s.Data.Length)
                throw new ArgumentException($"segment {i}: memsz < filesz");
            ulong off = AlignUp(cursor, SegmentAlign) + (s.PhysicalAddress % SegmentAlign);
            offsets[i] = off;
            cursor = off + (ulong)s.Data.Length;
        }

        var file = new byte[cursor];
        var span = file.AsSpan();
        // ELF identification: 64-bit, little-endian, version 1, System V ABI.
        "\x7F"u8.CopyTo(span);
        Encoding.ASCII.GetBytes("ELF").CopyTo(span[1..]);
        span[4] = 2; span[5] = 1; span[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(span[16..], 2);        // e_type = ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(span[18..], 62);       // e_machine = EM_X86_64
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], 1);        // e_version
        BinaryPrimitives.WriteUInt64LittleEndian(span[24..], entry);    // e_entry
        BinaryPrimitives.WriteUInt64LittleEndian(span[32..], EhdrSize); // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(span[52..], EhdrSize); // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(span[54..], PhdrSize); // e_phentsize
        BinaryPrimitives.WriteUInt16LittleEndian(span[56..], (ushort)phnum);
        BinaryPrimitives.WriteUInt16LittleEndian(span[58..], 64);       // e_shentsize (no sections)

        for (int i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            WritePhdr(span[(EhdrSize + i * PhdrSize)..], PtLoad, (uint)s.Flags, offsets[i], s.PhysicalAddress,
                (ulong)s.Data.Length, s.MemorySize, SegmentAlign);
            s.Data.CopyTo(span[(int)offsets[i]..]);
        }
        if (notes.Count > 0)
        {
            // p_align must be 4: QEMU pads the note name to p_align when it looks for the descriptor.
            WritePhdr(span[(EhdrSize + segments.Count * PhdrSize)..], PtNote, (uint)ElfSegmentFlags.Read, noteOffset, 0,
                (ulong)noteBytes.Length, (ulong)noteBytes.Length, 4);
            noteBytes.CopyTo(span[(int)noteOffset..]);
        }
        return file;
    }

    private static void WritePhdr(Span<byte> p, uint type, uint flags, ulong offset, ulong addr, ulong filesz, ulong memsz, ulong align)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(p, type);
        BinaryPrimitives.WriteUInt32LittleEndian(p[4..], flags);
        BinaryPrimitives.WriteUInt64LittleEndian(p[8..], offset);
        BinaryPrimitives.WriteUInt64LittleEndian(p[16..], addr);  // p_vaddr
        BinaryPrimitives.WriteUInt64LittleEndian(p[24..], addr);  // p_paddr (identity: guests run with paging off first)
        BinaryPrimitives.WriteUInt64LittleEndian(p[32..], filesz);
        BinaryPrimitives.WriteUInt64LittleEndian(p[40..], memsz);
        BinaryPrimitives.WriteUInt64LittleEndian(p[48..], align);
    }

    /// <summary>Encodes notes as Elf64_Nhdr (three u32: namesz, descsz, type) + name + desc, each padded to 4.</summary>
    public static byte[] EncodeNotes(IReadOnlyList<ElfNote> notes)
    {
        var ms = new MemoryStream();
        Span<byte> hdr = stackalloc byte[12];
        foreach (var n in notes)
        {
            byte[] name = Encoding.ASCII.GetBytes(n.Name + "\0");
            BinaryPrimitives.WriteUInt32LittleEndian(hdr, (uint)name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(hdr[4..], (uint)n.Descriptor.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(hdr[8..], n.Type);
            ms.Write(hdr);
            ms.Write(name);
            ms.Write(new byte[Pad4(name.Length)]);
            ms.Write(n.Descriptor);
            ms.Write(new byte[Pad4(n.Descriptor.Length)]);
        }
        return ms.ToArray();
    }

    private static int Pad4(int n) => (4 - n % 4) % 4;
    private static ulong AlignUp(ulong v, ulong a) => (v + a - 1) / a * a;
}
