namespace MiniVmm.Core.Boot;

/// <summary>E820-style memory types, as used by <c>hvm_memmap_table_entry.type</c>.</summary>
public enum MemoryMapType : uint
{
    Ram = 1,
    Reserved = 2,
    AcpiReclaimable = 3,
    AcpiNvs = 4,
    Unusable = 5,
}

/// <summary>One entry of the memory map handed to a PVH guest: <c>[Address, Address + Size)</c> of type
/// <paramref name="Type"/>.</summary>
public readonly record struct MemoryMapEntry(ulong Address, ulong Size, MemoryMapType Type)
{
    /// <summary>A usable-RAM entry.</summary>
    public static MemoryMapEntry Ram(ulong address, ulong size) => new(address, size, MemoryMapType.Ram);

    /// <summary>A reserved entry (e.g. an MMIO hole).</summary>
    public static MemoryMapEntry Reserved(ulong address, ulong size) => new(address, size, MemoryMapType.Reserved);
}
