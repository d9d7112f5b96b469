using System.Diagnostics.CodeAnalysis;

namespace MiniVmm.Core.Boot;

/// <summary>ELF file class (<c>EI_CLASS</c>).</summary>
public enum ElfClass : byte
{
    Elf32 = 1,
    Elf64 = 2,
}

/// <summary>
/// A parsed PVH boot image: an x86 ELF executable (ELF32 or ELF64, little-endian) whose entry point for a 32-bit
/// protected-mode start (the PVH boot ABI) is given by the Xen ELF note <c>XEN_ELFNOTE_PHYS32_ENTRY</c>. Optionally a
/// MiniVmm note gives a separate 32-bit entry for application processors.
/// </summary>
/// <remarks>
/// The file is untrusted input: every offset, size and count is checked (overflow-safe) before use, loops are
/// bounded (<see cref="MaxProgramHeaders"/>, <see cref="MaxNotes"/>), and the image keeps its own copy of the segment
/// bytes. Load addresses are the physical ones (<c>p_paddr</c>); section headers are not read.
/// </remarks>
public sealed class PvhElfImage
{
    /// <summary>Most program headers accepted (a kernel has fewer than 10).</summary>
    public const int MaxProgramHeaders = 256;

    /// <summary>Most ELF notes examined, over all <c>PT_NOTE</c> segments.</summary>
    public const int MaxNotes = 1024;

    /// <summary>Name of the Xen notes.</summary>
    public const string XenNoteName = "Xen";

    /// <summary><c>XEN_ELFNOTE_PHYS32_ENTRY</c>: the PVH 32-bit physical entry point.</summary>
    public const uint XenElfNotePhys32Entry = 18;

    /// <summary>Name of MiniVmm's own notes.</summary>
    public const string MiniVmmNoteName = "MiniVmm";

    /// <summary>MiniVmm note type: the 32-bit physical entry for application processors (4 or 8 byte descriptor).</summary>
    public const uint MiniVmmNoteApEntry = 1;

    private PvhElfImage(ElfClass elfClass, ushort machine, ulong elfEntry, uint entry, uint? apEntry,
        ImageSegment[] segments)
    {
        Class = elfClass;
        Machine = machine;
        ElfEntry = elfEntry;
        Entry = entry;
        ApEntry = apEntry;
        Segments = segments;
    }

    public ElfClass Class { get; }

    /// <summary><c>e_machine</c>: 3 (EM_386) or 62 (EM_X86_64).</summary>
    public ushort Machine { get; }

    /// <summary><c>e_entry</c> (often a virtual address; informational only, PVH does not use it).</summary>
    public ulong ElfEntry { get; }

    /// <summary>The PVH entry point (physical, 32-bit), from <c>XEN_ELFNOTE_PHYS32_ENTRY</c>.</summary>
    public uint Entry { get; }

    /// <summary>The application-processor entry point from the MiniVmm note, if present.</summary>
    public uint? ApEntry { get; }

    /// <summary>The <c>PT_LOAD</c> segments with a non-zero memory size, sorted by address, disjoint.</summary>
    public IReadOnlyList<ImageSegment> Segments { get; }

    /// <summary>Parses <paramref name="file"/>.</summary>
    /// <exception cref="BootImageException">The file is not a usable PVH ELF image; the message says why.</exception>
    public static PvhElfImage Parse(ReadOnlySpan<byte> file)
    {
        if (!TryParse(file, out PvhElfImage? image, out string? error))
            throw new BootImageException(error);
        return image;
    }

    /// <summary>Parses <paramref name="file"/>, returning the reason instead of throwing when it is not usable.</summary>
    public static bool TryParse(ReadOnlySpan<byte> file, [NotNullWhen(true)] out PvhElfImage? image,
        [NotNullWhen(false)] out string? error)
    {
        image = null;
        error = ElfExecutable.TryParse(file, out ElfExecutable? elf);
        if (error is not null)
            return false;
        if (elf!.PvhEntry is not { } entry)
        {
            error = "ELF has no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH image";
            return false;
        }
        image = new PvhElfImage(elf.Class, elf.Machine, elf.ElfEntry, entry, elf.ApEntry, [.. elf.Segments]);
        return true;
    }
}
