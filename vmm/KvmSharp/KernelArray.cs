using System.Runtime.InteropServices;

namespace KvmSharp;

/// <summary>
/// A kernel struct that ends in a flexible array (kvm_cpuid2, kvm_msrs, kvm_msr_list): a header whose first field is the
/// entry count, then the entries. One zeroed native buffer for one ioctl, freed on Dispose. What the kernel writes back
/// as the count is clamped to the capacity before entries are read.
/// </summary>
internal unsafe ref struct KernelArray<TEntry> where TEntry : unmanaged
{
    private byte* _buffer;
    private readonly int _headerSize;

    /// <param name="headerSize">sizeof the header struct (its first field is the u32 count)</param>
    public KernelArray(int headerSize, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _headerSize = headerSize;
        Capacity = capacity;
        _buffer = (byte*)NativeMemory.AllocZeroed((nuint)(headerSize + capacity * sizeof(TEntry)));
        Count = (uint)capacity;
    }

    /// <summary>A buffer holding a copy of <paramref name="entries"/>, its count set.</summary>
    public static KernelArray<TEntry> Of(int headerSize, ReadOnlySpan<TEntry> entries)
    {
        var array = new KernelArray<TEntry>(headerSize, entries.Length);
        entries.CopyTo(array.Entries);
        return array;
    }

    public int Capacity { get; }

    /// <summary>The header's count: what the caller offers before the ioctl, what the kernel filled in after.</summary>
    public readonly uint Count
    {
        get => *(uint*)_buffer;
        set => *(uint*)_buffer = value;
    }

    /// <summary>The argument of the ioctl.</summary>
    public readonly void* Pointer => _buffer;

    public readonly Span<TEntry> Entries => new(_buffer + _headerSize, Capacity);

    /// <summary>The first <paramref name="count"/> entries (at most the capacity), copied out.</summary>
    public readonly TEntry[] ToArray(long count) => Entries[..(int)Math.Clamp(count, 0, Capacity)].ToArray();

    public void Dispose()
    {
        if (_buffer is null) return;
        NativeMemory.Free(_buffer);
        _buffer = null;
    }
}
