using KvmSharp;

namespace MiniVmm.Core.Memory;

/// <summary>One contiguous block of guest RAM backed by one host mapping it owns.</summary>
public sealed class GuestMemoryRegion : IDisposable
{
    private readonly MemoryMapping _mapping;

    internal GuestMemoryRegion(int index, ulong guestAddress, MemoryMapping mapping)
    {
        Index = index;
        GuestAddress = guestAddress;
        _mapping = mapping;
    }

    public int Index { get; }
    public ulong GuestAddress { get; }
    public ulong Size => _mapping.Length;
    public ulong EndAddress => GuestAddress + Size;
    public long PageCount => (long)(Size / GuestMemory.PageSize);

    /// <summary>A bounds-checked span over [offset, offset+length) of this region; valid while the VM lives.</summary>
    public Span<byte> GetSpan(ulong offset, int length) => _mapping.GetSpan(offset, length);

    /// <summary>The host address of the region, for KVM memory slots and userfaultfd ranges only.</summary>
    public nint DangerousGetHostAddress() => _mapping.DangerousGetAddress();

    /// <summary>
    /// Reads one byte every <paramref name="stride"/> bytes. On never-touched transparent-huge-page memory this maps the
    /// huge zero page, so later write protection works per 2 MiB entry instead of installing 512 PTE markers.
    /// </summary>
    public void TouchForRead(ulong stride)
    {
        for (ulong offset = 0; offset < Size; offset += stride)
            _ = Volatile.Read(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(GetSpan(offset, 1)));
    }

    /// <summary>Drops [offset, offset+length) back to unpopulated zero pages (restore reuses a region this way).</summary>
    public void Discard(ulong offset, ulong length) => _mapping.Discard(offset, length);

    public void Dispose() => _mapping.Dispose();
}
