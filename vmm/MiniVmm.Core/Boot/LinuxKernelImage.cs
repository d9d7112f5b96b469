using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace MiniVmm.Core.Boot;

/// <summary>The two image formats booted with the Linux 64-bit boot protocol.</summary>
public enum LinuxImageFormat
{
    /// <summary>An uncompressed <c>vmlinux</c> ELF64: segments at their <c>p_paddr</c>, entry <c>e_entry</c>
    /// (<c>startup_64</c>, physical).</summary>
    Vmlinux,
    /// <summary>A bzImage: setup sectors with the setup header, then the protected-mode kernel (the decompressor),
    /// entered at load address + 0x200.</summary>
    BzImage,
}

/// <summary>
/// A Linux kernel parsed for the 64-bit boot protocol (boot.rst, "64-bit Boot Protocol"): what to copy where, the
/// 64-bit entry, and the header the loader puts into <c>boot_params</c>. Built by <see cref="ParseVmlinux"/> or
/// <see cref="ParseBzImage"/>; the file is untrusted, every field is checked before use.
/// </summary>
public sealed class LinuxKernelImage
{
    /// <summary>Lowest address a kernel may load at: below 1 MiB is the loader's boot area and the legacy hole.</summary>
    public const ulong MinLoadAddress = 0x100000;

    private LinuxKernelImage(LinuxImageFormat format, ImageSegment[] segments, ulong entry, byte[] setupHeader,
        ushort version, int commandLineLimit, ulong initrdAddressMax, ulong kernelEnd)
    {
        Format = format;
        Segments = segments;
        Entry = entry;
        SetupHeader = setupHeader;
        ProtocolVersion = version;
        CommandLineLimit = commandLineLimit;
        InitrdAddressMax = initrdAddressMax;
        KernelEnd = kernelEnd;
    }

    public LinuxImageFormat Format { get; }

    /// <summary>What to copy into RAM, sorted and disjoint, all at or above <see cref="MinLoadAddress"/>.</summary>
    public IReadOnlyList<ImageSegment> Segments { get; }

    /// <summary>The 64-bit entry (physical; RIP at start).</summary>
    public ulong Entry { get; }

    /// <summary>Bytes for <c>boot_params</c> from offset <see cref="LinuxSetupHeader.Start"/>: a bzImage's own header,
    /// or for a vmlinux the few fields a loader fills for a kernel without one.</summary>
    public ReadOnlyMemory<byte> SetupHeader { get; }

    /// <summary>Boot protocol version (0x020f = 2.15); 0 for a vmlinux, which has no header.</summary>
    public ushort ProtocolVersion { get; }

    /// <summary>Longest command line in bytes without its NUL (<c>cmdline_size</c>, capped at
    /// <see cref="LinuxLoader.CommandLineCapacity"/>).</summary>
    public int CommandLineLimit { get; }

    /// <summary>Highest address the initrd's last byte may have (<c>initrd_addr_max</c>).</summary>
    public ulong InitrdAddressMax { get; }

    /// <summary>First address past what the kernel needs while it starts (bzImage: load address + <c>init_size</c>,
    /// where the decompressor works; vmlinux: the end of its last segment). RAM must reach it and the initrd must not
    /// overlap it.</summary>
    public ulong KernelEnd { get; }

    /// <summary>Load address of the first segment.</summary>
    public ulong LoadAddress => Segments[0].PhysicalAddress;

    /// <summary>Parses an uncompressed vmlinux (an ELF64 x86-64 executable).</summary>
    /// <exception cref="BootImageException">Not a usable vmlinux; the message says why.</exception>
    public static LinuxKernelImage ParseVmlinux(ReadOnlySpan<byte> file) =>
        TryParseVmlinux(file, out LinuxKernelImage? image, out string? error) ? image : throw new BootImageException(error);

    /// <summary>Parses a bzImage.</summary>
    /// <exception cref="BootImageException">Not a usable bzImage; the message says why.</exception>
    public static LinuxKernelImage ParseBzImage(ReadOnlySpan<byte> file) =>
        TryParseBzImage(file, out LinuxKernelImage? image, out string? error) ? image : throw new BootImageException(error);

    public static bool TryParseVmlinux(ReadOnlySpan<byte> file, [NotNullWhen(true)] out LinuxKernelImage? image,
        [NotNullWhen(false)] out string? error)
    {
        image = null;
        error = ElfExecutable.TryParse(file, out ElfExecutable? elf);
        if (error is not null)
            return false;
        if (elf!.Class != ElfClass.Elf64 || elf.Machine != ElfExecutable.EmX86_64)
        {
            error = $"an {elf.Class} ELF (machine {elf.Machine}) without a PVH note cannot boot: the Linux 64-bit " +
                    "protocol needs an ELF64 x86-64 vmlinux, a 32-bit kernel needs a PVH note (CONFIG_PVH)";
            return false;
        }
        ImageSegment first = elf.Segments[0];
        if (first.PhysicalAddress < MinLoadAddress)
        {
            error = $"{first} lies below 1 MiB (0x{MinLoadAddress:x}), where the boot data and the legacy PC hole are";
            return false;
        }
        if (!ElfExecutable.InsideLoadedBytes(elf.Segments, elf.ElfEntry))
        {
            error = $"entry 0x{elf.ElfEntry:x} (e_entry) is not inside a loaded segment: a vmlinux's e_entry is the " +
                    "physical address of startup_64";
            return false;
        }

        // What a loader fills for a kernel without a setup header (as other VMMs do): the magic values, so the kernel
        // reads boot_params as a protocol-conforming one, and an alignment for its own relocation logic.
        byte[] header = new byte[LinuxSetupHeader.InitSizeEnd - LinuxSetupHeader.Start];
        Put16(header, LinuxSetupHeader.BootFlag, LinuxSetupHeader.BootFlagValue);
        Put32(header, LinuxSetupHeader.Header, LinuxSetupHeader.HeaderMagic);
        Put32(header, LinuxSetupHeader.KernelAlignment, 0x1000000);
        Put32(header, LinuxSetupHeader.InitrdAddrMax, LinuxSetupHeader.VmlinuxInitrdAddrMax);

        image = new LinuxKernelImage(LinuxImageFormat.Vmlinux, [.. elf.Segments], elf.ElfEntry, header, 0,
            LinuxSetupHeader.DefaultCmdlineSize, LinuxSetupHeader.VmlinuxInitrdAddrMax, elf.Segments[^1].EndAddress);
        return true;
    }

    public static bool TryParseBzImage(ReadOnlySpan<byte> file, [NotNullWhen(true)] out LinuxKernelImage? image,
        [NotNullWhen(false)] out string? error)
    {
        image = null;
        error = ParseBzImageCore(file, out image);
        return error is null;
    }

    private static string? ParseBzImageCore(ReadOnlySpan<byte> file, out LinuxKernelImage? image)
    {
        image = null;
        if (file.Length < LinuxSetupHeader.Version + 2)
            return $"truncated bzImage: the file is {file.Length} bytes, too short for the setup header " +
                   $"(it ends at 0x{LinuxSetupHeader.Version + 2:x} at least)";
        if (U32(file, LinuxSetupHeader.Header) != LinuxSetupHeader.HeaderMagic)
            return $"bad magic: no \"HdrS\" at 0x{LinuxSetupHeader.Header:x}, not a Linux bzImage";
        if (U16(file, LinuxSetupHeader.BootFlag) != LinuxSetupHeader.BootFlagValue)
            return $"bad boot flag 0x{U16(file, LinuxSetupHeader.BootFlag):x} at 0x{LinuxSetupHeader.BootFlag:x} " +
                   $"(expected 0x{LinuxSetupHeader.BootFlagValue:x})";
        ushort version = U16(file, LinuxSetupHeader.Version);
        if (version < LinuxSetupHeader.MinVersion)
            return $"boot protocol {version >> 8}.{version & 0xff:d2} is too old: 2.12 or later is needed " +
                   "(the 64-bit entry is announced in xloadflags, new in 2.12)";

        // The header's length is in its own jump instruction; a 2.12 header reaches at least past init_size.
        int headerEnd = LinuxSetupHeader.Jump + 2 + file[LinuxSetupHeader.Jump + 1];
        if (headerEnd < LinuxSetupHeader.InitSizeEnd)
            return $"setup header ends at 0x{headerEnd:x} (jump at 0x200), before init_size: not a protocol " +
                   $"{version >> 8}.{version & 0xff:d2} header";
        headerEnd = Math.Min(headerEnd, LinuxSetupHeader.MaxEnd);
        if (file.Length < headerEnd)
            return $"truncated bzImage: the file is {file.Length} bytes, the setup header ends at 0x{headerEnd:x}";

        int setupSects = file[LinuxSetupHeader.SetupSects] == 0 ? 4 : file[LinuxSetupHeader.SetupSects];
        int setupBytes = (setupSects + 1) * 512;
        if (file.Length <= setupBytes)
            return $"truncated bzImage: the file is {file.Length} bytes, no protected-mode kernel after the " +
                   $"{setupSects} setup sectors (0x{setupBytes:x} bytes)";

        byte loadFlags = file[LinuxSetupHeader.LoadFlags];
        if ((loadFlags & LinuxSetupHeader.LoadedHigh) == 0)
            return "loadflags has no LOADED_HIGH: a zImage that loads at 0x10000 is not supported, only bzImages";
        ushort xloadFlags = U16(file, LinuxSetupHeader.XLoadFlags);
        if ((xloadFlags & LinuxSetupHeader.XlfKernel64) == 0)
            return "the kernel has no 64-bit entry (XLF_KERNEL_64 is clear in xloadflags): a 32-bit-only kernel " +
                   "cannot boot with the 64-bit protocol";

        uint alignment = U32(file, LinuxSetupHeader.KernelAlignment);
        bool relocatable = file[LinuxSetupHeader.RelocatableKernel] != 0;
        ulong prefAddress = U64(file, LinuxSetupHeader.PrefAddress);
        uint initSize = U32(file, LinuxSetupHeader.InitSize);
        uint cmdlineSize = U32(file, LinuxSetupHeader.CmdlineSize);
        uint initrdAddrMax = U32(file, LinuxSetupHeader.InitrdAddrMax);
        int kernelBytes = file.Length - setupBytes;

        if (relocatable && (alignment < 0x1000 || (alignment & (alignment - 1)) != 0))
            return $"kernel_alignment 0x{alignment:x} is not a power of two of at least 4 KiB";
        if (prefAddress < MinLoadAddress || prefAddress >= 1UL << 32)
            return $"pref_address 0x{prefAddress:x} is outside 1 MiB..4 GiB";
        // A relocatable kernel moves itself to the next kernel_alignment boundary: loading it on one keeps init_size
        // (counted from the load address) the whole footprint. A fixed kernel runs only where it was linked.
        ulong loadAddress = relocatable ? AlignUp(prefAddress, alignment) : prefAddress;
        if (initSize < kernelBytes)
            return $"init_size 0x{initSize:x} is smaller than the protected-mode kernel (0x{kernelBytes:x} bytes)";
        if (cmdlineSize == 0)
            return "cmdline_size is 0: the kernel takes no command line";
        if (initrdAddrMax < MinLoadAddress)
            return $"initrd_addr_max 0x{initrdAddrMax:x} is below 1 MiB";

        byte[] header = file[LinuxSetupHeader.Start..headerEnd].ToArray();
        byte[] kernel = file[setupBytes..].ToArray();
        // The 64-bit entry must be kernel bytes, as a vmlinux's entry must lie in a loaded segment: a truncated file
        // would otherwise be entered in zeroed RAM.
        if ((ulong)kernel.Length <= LinuxSetupHeader.StartupOffset64)
        {
            image = null;
            return $"truncated bzImage: the protected-mode kernel is {kernel.Length} bytes, it ends before its 64-bit entry at +0x{LinuxSetupHeader.StartupOffset64:x}";
        }
        int limit = (int)Math.Min(cmdlineSize, (uint)LinuxLoader.CommandLineCapacity);
        image = new LinuxKernelImage(LinuxImageFormat.BzImage,
            [new ImageSegment(loadAddress, kernel, (ulong)kernel.Length)], loadAddress + LinuxSetupHeader.StartupOffset64,
            header, version, limit, initrdAddrMax, loadAddress + initSize);
        return null;
    }

    private static ulong AlignUp(ulong value, ulong align) => (value + align - 1) & ~(align - 1);
    private static ushort U16(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt16LittleEndian(s[at..]);
    private static uint U32(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
    private static ulong U64(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt64LittleEndian(s[at..]);

    /// <summary>Writes into a header buffer that starts at <see cref="LinuxSetupHeader.Start"/>.</summary>
    private static void Put16(byte[] header, int offset, ushort value) =>
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(offset - LinuxSetupHeader.Start), value);

    private static void Put32(byte[] header, int offset, uint value) =>
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(offset - LinuxSetupHeader.Start), value);
}
