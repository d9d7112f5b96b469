namespace MiniVmm.Core.Boot;

/// <summary>Bytes a loader copies into guest RAM: <see cref="Data"/> goes at <see cref="PhysicalAddress"/> and the rest
/// of <see cref="MemorySize"/> is zero-filled (an ELF <c>PT_LOAD</c> segment with its bss, or a bzImage's protected-mode
/// kernel).</summary>
public sealed class ImageSegment
{
    internal ImageSegment(ulong physicalAddress, ReadOnlyMemory<byte> data, ulong memorySize)
    {
        PhysicalAddress = physicalAddress;
        Data = data;
        MemorySize = memorySize;
    }

    /// <summary><c>p_paddr</c>, or where the loader chose to put the bytes.</summary>
    public ulong PhysicalAddress { get; }

    /// <summary>The segment's file bytes (<c>p_filesz</c> of them), copied out of the file.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary><c>p_memsz</c>; at least <c>Data.Length</c>.</summary>
    public ulong MemorySize { get; }

    /// <summary>First address past the segment (never wraps: checked at parse time).</summary>
    public ulong EndAddress => PhysicalAddress + MemorySize;

    public override string ToString() => $"segment 0x{PhysicalAddress:x}-0x{EndAddress - 1:x}";
}
