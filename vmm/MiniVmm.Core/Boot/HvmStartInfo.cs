using System.Runtime.InteropServices;

namespace MiniVmm.Core.Boot;

/// <summary>
/// <c>struct hvm_start_info</c> (Xen <c>public/arch-x86/hvm/start_info.h</c>, version 1): what a PVH guest finds at the
/// physical address in EBX on entry. Little-endian, 56 bytes.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct HvmStartInfo
{
    public const int Size = 56;

    /// <summary><c>XEN_HVM_START_MAGIC_VALUE</c>.</summary>
    public const uint MagicValue = 0x336ec578;

    /// <summary>Version 1 adds the memory map fields.</summary>
    public const uint CurrentVersion = 1;

    /// <summary><c>magic</c>.</summary>
    [FieldOffset(0)] public uint Magic;
    /// <summary><c>version</c>.</summary>
    [FieldOffset(4)] public uint Version;
    /// <summary><c>flags</c> (SIF_xxx).</summary>
    [FieldOffset(8)] public uint Flags;
    /// <summary><c>nr_modules</c>.</summary>
    [FieldOffset(12)] public uint ModuleCount;
    /// <summary><c>modlist_paddr</c>.</summary>
    [FieldOffset(16)] public ulong ModuleListAddress;
    /// <summary><c>cmdline_paddr</c>: a NUL-terminated string.</summary>
    [FieldOffset(24)] public ulong CommandLineAddress;
    /// <summary><c>rsdp_paddr</c>: 0 = none.</summary>
    [FieldOffset(32)] public ulong RsdpAddress;
    /// <summary><c>memmap_paddr</c>: an array of <see cref="HvmMemoryMapEntry"/>.</summary>
    [FieldOffset(40)] public ulong MemoryMapAddress;
    /// <summary><c>memmap_entries</c>.</summary>
    [FieldOffset(48)] public uint MemoryMapEntries;
    /// <summary><c>reserved</c>, must be 0.</summary>
    [FieldOffset(52)] public uint Reserved;
}

/// <summary><c>struct hvm_memmap_table_entry</c>: 24 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct HvmMemoryMapEntry
{
    public const int Size = 24;

    /// <summary><c>addr</c>.</summary>
    [FieldOffset(0)] public ulong Address;
    /// <summary><c>size</c>.</summary>
    [FieldOffset(8)] public ulong Length;
    /// <summary><c>type</c> (E820 numbering, see <see cref="MemoryMapType"/>).</summary>
    [FieldOffset(16)] public uint Type;
    /// <summary><c>reserved</c>, must be 0.</summary>
    [FieldOffset(20)] public uint Reserved;
}
