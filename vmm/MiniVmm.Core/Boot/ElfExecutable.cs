using System.Buffers.Binary;

namespace MiniVmm.Core.Boot;

/// <summary>
/// A parsed x86 ELF executable (ELF32 or ELF64, little-endian, <c>ET_EXEC</c>): its <c>PT_LOAD</c> segments and the
/// boot notes MiniVmm knows (the Xen PVH entry, MiniVmm's AP entry). <see cref="PvhElfImage"/> (a PVH image) and
/// <see cref="LinuxKernelImage"/> (a <c>vmlinux</c> for the Linux 64-bit boot protocol) are built on it.
/// </summary>
/// <remarks>
/// The file is untrusted input: every offset, size and count is checked (overflow-safe) before use, loops are
/// bounded (<see cref="PvhElfImage.MaxProgramHeaders"/>, <see cref="PvhElfImage.MaxNotes"/>), and the image keeps its
/// own copy of the segment bytes. Load addresses are the physical ones (<c>p_paddr</c>); section headers are not read.
/// </remarks>
internal sealed class ElfExecutable
{
    internal const ushort EmI386 = 3;
    internal const ushort EmX86_64 = 62;
    internal const ushort EtExec = 2;
    internal const uint PtLoad = 1;
    internal const uint PtNote = 4;
    internal const ushort PnXnum = 0xFFFF;

    private ElfExecutable(ElfClass elfClass, ushort machine, ulong elfEntry, uint? pvhEntry, uint? apEntry,
        ImageSegment[] segments)
    {
        Class = elfClass;
        Machine = machine;
        ElfEntry = elfEntry;
        PvhEntry = pvhEntry;
        ApEntry = apEntry;
        Segments = segments;
    }

    public ElfClass Class { get; }
    public ushort Machine { get; }
    /// <summary><c>e_entry</c>.</summary>
    public ulong ElfEntry { get; }
    /// <summary>From <c>XEN_ELFNOTE_PHYS32_ENTRY</c>, when the image has the note (checked to lie in loaded bytes).</summary>
    public uint? PvhEntry { get; }
    /// <summary>From the MiniVmm AP entry note, when present (checked to lie in loaded bytes).</summary>
    public uint? ApEntry { get; }
    /// <summary>The <c>PT_LOAD</c> segments with a non-zero memory size, sorted by address, disjoint.</summary>
    public IReadOnlyList<ImageSegment> Segments { get; }

    /// <summary>True when the file starts with the ELF magic (what kernel-kind detection looks at).</summary>
    public static bool HasMagic(ReadOnlySpan<byte> file) =>
        file.Length >= 4 && file[0] == 0x7F && file[1] == (byte)'E' && file[2] == (byte)'L' && file[3] == (byte)'F';

    internal static string? TryParse(ReadOnlySpan<byte> file, out ElfExecutable? image)
    {
        image = null;
        if (file.Length < 16 || file[0] != 0x7F || file[1] != (byte)'E' || file[2] != (byte)'L' ||
            file[3] != (byte)'F')
            return "not an ELF file (bad magic)";

        byte cls = file[4];
        if (cls != (byte)ElfClass.Elf32 && cls != (byte)ElfClass.Elf64)
            return $"unsupported ELF class {cls} (expected 1 = ELF32 or 2 = ELF64)";
        var elfClass = (ElfClass)cls;
        bool is64 = elfClass == ElfClass.Elf64;
        if (file[5] != 1)
            return $"ELF data encoding {file[5]} is not little-endian (EI_DATA must be 1)";
        if (file[6] != 1)
            return $"unsupported ELF version {file[6]} (EI_VERSION must be 1)";

        int headerSize = is64 ? 64 : 52;
        if (file.Length < headerSize)
            return $"truncated ELF header: the file is {file.Length} bytes, an {elfClass} header needs {headerSize}";

        ushort type = U16(file, 16);
        if (type != EtExec)
            return $"ELF type {type} is not ET_EXEC (2): a kernel image is an executable";
        ushort machine = U16(file, 18);
        if (machine != EmI386 && machine != EmX86_64)
            return $"ELF machine {machine} is not x86 (EM_386 = 3 or EM_X86_64 = 62)";

        ulong elfEntry = is64 ? U64(file, 24) : U32(file, 24);
        ulong phOffset = is64 ? U64(file, 32) : U32(file, 28);
        ushort phEntrySize = U16(file, is64 ? 54 : 42);
        ushort phCount = U16(file, is64 ? 56 : 44);
        int expectedEntrySize = is64 ? 56 : 32;

        if (phCount == 0)
            return "ELF has no program headers";
        if (phCount == PnXnum)
            return "ELF uses extended program header numbering (PN_XNUM), which is not supported";
        if (phCount > PvhElfImage.MaxProgramHeaders)
            return $"ELF has {phCount} program headers; the limit is {PvhElfImage.MaxProgramHeaders}";
        if (phEntrySize != expectedEntrySize)
            return $"ELF program header entry size is {phEntrySize}; an {elfClass} program header is {expectedEntrySize}";
        ulong phBytes = (ulong)phCount * phEntrySize;
        if (!FitsInFile(phOffset, phBytes, file.Length))
            return $"program headers (offset 0x{phOffset:x}, {phCount} x {phEntrySize} bytes) lie outside the file " +
                   $"({file.Length} bytes)";

        var segments = new List<ImageSegment>();
        var notes = new NoteScan();
        for (int i = 0; i < phCount; i++)
        {
            ReadOnlySpan<byte> ph = file.Slice((int)phOffset + i * phEntrySize, phEntrySize);
            uint pType = U32(ph, 0);
            ulong offset, paddr, fileSize, memSize, align;
            if (is64)
            {
                offset = U64(ph, 8);
                paddr = U64(ph, 24);
                fileSize = U64(ph, 32);
                memSize = U64(ph, 40);
                align = U64(ph, 48);
            }
            else
            {
                offset = U32(ph, 4);
                paddr = U32(ph, 12);
                fileSize = U32(ph, 16);
                memSize = U32(ph, 20);
                align = U32(ph, 28);
            }

            if (pType == PtLoad)
            {
                if (fileSize > memSize)
                    return $"program header {i}: file size 0x{fileSize:x} is larger than memory size 0x{memSize:x}";
                if (!FitsInFile(offset, fileSize, file.Length))
                    return $"program header {i}: file bytes 0x{offset:x}+0x{fileSize:x} lie outside the file " +
                           $"({file.Length} bytes)";
                // The end address must be representable: below 2^64, or at most 2^32 for ELF32.
                ulong endLimit = is64 ? ulong.MaxValue : 1UL << 32;
                if (paddr > endLimit - memSize)
                    return $"program header {i}: address 0x{paddr:x} + size 0x{memSize:x} overflows the " +
                           $"{(is64 ? 64 : 32)}-bit address space";
                if (memSize == 0)
                    continue;
                byte[] data = file.Slice((int)offset, (int)fileSize).ToArray();
                segments.Add(new ImageSegment(paddr, data, memSize));
            }
            else if (pType == PtNote)
            {
                if (!FitsInFile(offset, fileSize, file.Length))
                    return $"program header {i} (PT_NOTE): bytes 0x{offset:x}+0x{fileSize:x} lie outside the file " +
                           $"({file.Length} bytes)";
                string? noteError = notes.Scan(file.Slice((int)offset, (int)fileSize), align == 8 ? 8 : 4, offset);
                if (noteError is not null)
                    return noteError;
            }
        }

        if (segments.Count == 0)
            return "ELF has no PT_LOAD segments with a non-zero size";
        segments.Sort((a, b) => a.PhysicalAddress.CompareTo(b.PhysicalAddress));
        for (int i = 1; i < segments.Count; i++)
        {
            if (segments[i].PhysicalAddress < segments[i - 1].EndAddress)
                return $"{segments[i - 1]} and {segments[i]} overlap";
        }

        if (notes.Entry is { } entry && !InsideLoadedBytes(segments, entry))
            return $"PVH entry 0x{entry:x} is not inside a loaded segment";
        if (notes.ApEntry is { } apEntry && !InsideLoadedBytes(segments, apEntry))
            return $"MiniVmm AP entry 0x{apEntry:x} is not inside a loaded segment";

        image = new ElfExecutable(elfClass, machine, elfEntry, notes.Entry, notes.ApEntry, segments.ToArray());
        return null;
    }

    /// <summary>True when <paramref name="address"/> lies in a segment's file bytes (code, not bss).</summary>
    internal static bool InsideLoadedBytes(IReadOnlyList<ImageSegment> segments, ulong address)
    {
        foreach (ImageSegment s in segments)
        {
            if (address >= s.PhysicalAddress && address - s.PhysicalAddress < (ulong)s.Data.Length)
                return true;
        }
        return false;
    }

    private static bool FitsInFile(ulong offset, ulong length, int fileLength) =>
        offset <= (ulong)fileLength && length <= (ulong)fileLength - offset;

    private static ushort U16(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt16LittleEndian(s[at..]);
    private static uint U32(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
    private static ulong U64(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt64LittleEndian(s[at..]);

    /// <summary>Walks ELF notes, remembering the two MiniVmm cares about. Bounded by <see cref="PvhElfImage.MaxNotes"/>.</summary>
    private sealed class NoteScan
    {
        private int _count;

        public uint? Entry { get; private set; }
        public uint? ApEntry { get; private set; }

        public string? Scan(ReadOnlySpan<byte> notes, int align, ulong fileOffset)
        {
            int pos = 0;
            while (pos < notes.Length)
            {
                if (++_count > PvhElfImage.MaxNotes)
                    return $"ELF has more than {PvhElfImage.MaxNotes} notes";
                int remaining = notes.Length - pos;
                if (remaining < 12)
                    return $"truncated ELF note header at file offset 0x{fileOffset + (ulong)pos:x}";
                ulong nameSize = U32(notes, pos);
                ulong descSize = U32(notes, pos + 4);
                uint type = U32(notes, pos + 8);
                // As binutils' ELF_NOTE_DESC_OFFSET / ELF_NOTE_NEXT_OFFSET: offsets are aligned from the note's start.
                ulong nameStart = 12;
                ulong descStart = AlignUp(nameStart + nameSize, align);
                ulong descEnd = descStart + descSize; // u32 sizes: no overflow in u64
                if (descEnd > (ulong)remaining)
                    return $"truncated ELF note at file offset 0x{fileOffset + (ulong)pos:x} " +
                           $"(name {nameSize} bytes, descriptor {descSize} bytes)";
                ReadOnlySpan<byte> note = notes.Slice(pos, (int)descEnd);
                ReadOnlySpan<byte> name = note.Slice((int)nameStart, (int)nameSize);
                ReadOnlySpan<byte> desc = note[(int)descStart..];

                if (NameIs(name, PvhElfImage.XenNoteName) && type == PvhElfImage.XenElfNotePhys32Entry)
                {
                    if (Entry is not null)
                        return "ELF has more than one XEN_ELFNOTE_PHYS32_ENTRY note";
                    string? error = ReadAddress(desc, "XEN_ELFNOTE_PHYS32_ENTRY", "PVH entry", out uint value);
                    if (error is not null)
                        return error;
                    Entry = value;
                }
                else if (NameIs(name, PvhElfImage.MiniVmmNoteName) && type == PvhElfImage.MiniVmmNoteApEntry)
                {
                    if (ApEntry is not null)
                        return "ELF has more than one MiniVmm AP entry note";
                    string? error = ReadAddress(desc, "MiniVmm AP entry note", "MiniVmm AP entry", out uint value);
                    if (error is not null)
                        return error;
                    ApEntry = value;
                }

                ulong next = AlignUp(descEnd, align);
                // The padding after the last note may be missing; anything else continues at the aligned offset.
                pos = next >= (ulong)remaining ? notes.Length : pos + (int)next;
            }
            return null;
        }

        private static ulong AlignUp(ulong value, int align) => (value + (ulong)align - 1) & ~((ulong)align - 1);

        /// <summary>Matches a note name with its terminating NUL (the standard form) or without.</summary>
        private static bool NameIs(ReadOnlySpan<byte> name, string expected)
        {
            if (name.Length > 0 && name[^1] == 0)
                name = name[..^1];
            if (name.Length != expected.Length)
                return false;
            for (int i = 0; i < name.Length; i++)
            {
                if (name[i] != expected[i])
                    return false;
            }
            return true;
        }

        private static string? ReadAddress(ReadOnlySpan<byte> desc, string noteName, string what, out uint value)
        {
            value = 0;
            ulong raw;
            if (desc.Length == 4)
                raw = U32(desc, 0);
            else if (desc.Length == 8)
                raw = U64(desc, 0);
            else
                return $"{noteName} descriptor is {desc.Length} bytes; expected 4 or 8";
            if (raw > uint.MaxValue)
                return $"{what} 0x{raw:x} is above 4 GiB: the PVH entry runs in 32-bit mode";
            value = (uint)raw;
            return null;
        }
    }
}
