namespace MiniVmm.Core.Boot;

/// <summary>
/// Offsets and values of the Linux x86 boot protocol (Documentation/arch/x86/boot.rst, arch/x86/include/uapi/asm/
/// bootparam.h): the setup header as it stands in a bzImage file and, at the same offsets, in <c>struct boot_params</c>
/// (the "zero page").
/// </summary>
public static class LinuxSetupHeader
{
    /// <summary>The setup header starts at 0x1f1 in both the file and the zero page.</summary>
    public const int Start = 0x1f1;

    public const int SetupSects = 0x1f1;
    public const int BootFlag = 0x1fe;
    /// <summary>A two-byte short jump; its displacement byte (0x201) says where the header ends: 0x202 + displacement.</summary>
    public const int Jump = 0x200;
    public const int Header = 0x202;
    public const int Version = 0x206;
    public const int TypeOfLoader = 0x210;
    public const int LoadFlags = 0x211;
    public const int Code32Start = 0x214;
    public const int RamdiskImage = 0x218;
    public const int RamdiskSize = 0x21c;
    public const int CmdLinePtr = 0x228;
    public const int InitrdAddrMax = 0x22c;
    public const int KernelAlignment = 0x230;
    public const int RelocatableKernel = 0x234;
    public const int XLoadFlags = 0x236;
    public const int CmdlineSize = 0x238;
    public const int PrefAddress = 0x258;
    public const int InitSize = 0x260;
    /// <summary>First byte past <c>init_size</c>: a 2.12+ header is at least this long.</summary>
    public const int InitSizeEnd = 0x264;
    /// <summary>Most header bytes copied into the zero page: <c>struct setup_header</c> ends before 0x290.</summary>
    public const int MaxEnd = 0x290;

    /// <summary><c>boot_flag</c>: the old boot-sector signature.</summary>
    public const ushort BootFlagValue = 0xAA55;
    /// <summary><c>header</c>: "HdrS".</summary>
    public const uint HeaderMagic = 0x53726448;
    /// <summary>2.12: the first version with <c>xloadflags</c> (and so <c>XLF_KERNEL_64</c>, the 64-bit entry).</summary>
    public const ushort MinVersion = 0x020c;
    /// <summary><c>type_of_loader</c> 0xff: "undefined" loader (no assigned boot-loader id).</summary>
    public const byte UndefinedLoader = 0xff;

    /// <summary><c>loadflags</c> bit 0: the protected-mode kernel loads at 1 MiB or above (a bzImage).</summary>
    public const byte LoadedHigh = 0x01;
    /// <summary><c>xloadflags</c> bit 0: the kernel has the 64-bit entry at load address + 0x200.</summary>
    public const ushort XlfKernel64 = 0x0001;
    /// <summary>Offset of <c>startup_64</c> from the load address of a bzImage's protected-mode kernel.</summary>
    public const ulong StartupOffset64 = 0x200;

    // struct boot_params fields outside the setup header.
    public const int ExtRamdiskImage = 0x0c0;
    public const int ExtRamdiskSize = 0x0c4;
    public const int ExtCmdLinePtr = 0x0c8;
    public const int E820Entries = 0x1e8;
    public const int E820Table = 0x2d0;
    public const int E820EntrySize = 20;
    /// <summary><c>E820_MAX_ENTRIES_ZEROPAGE</c>.</summary>
    public const int E820MaxEntries = 128;
    public const int BootParamsSize = 0x1000;

    /// <summary>x86 <c>COMMAND_LINE_SIZE</c> (2048) less the NUL: the limit for a kernel without a setup header.</summary>
    public const int DefaultCmdlineSize = 2047;
    /// <summary><c>initrd_addr_max</c> for a vmlinux (it has no setup header): the value x86-64 kernels state in
    /// their bzImage header.</summary>
    public const uint VmlinuxInitrdAddrMax = 0x7fffffff;
}
