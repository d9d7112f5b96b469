using KvmSharp;

namespace MiniVmm.Core.Memory;

/// <summary>One contiguous block of guest RAM backed by one host mapping it owns.</summary>
public sealed class GuestMemoryRegion : IDisposable
{
    private readonly MemoryMapping _mapping;

    internal GuestMemoryRegion(int index, GuestAddress guestAddress, MemoryMapping mapping)
    {
        Index = index;
        GuestAddress = guestAddress;
        _mapping = mapping;
    }

    public int Index { get; }
    public GuestAddress GuestAddress { get; }
    public ulong Size => _mapping.Length;
    public GuestAddress EndAddress => GuestAddress + Size;
    public long PageCount => (long)(Size / GuestMemory.PageSize);

    /// <summary>A bounds-checked span over [offset, offset+length) of this region; valid while the VM lives.</summary>
    public Span<byte> GetSpan(ulong offset, int length) => _mapping.GetSpan(offset, length);

    /// <summary>Maps this region into a KVM VM as memory slot <see cref="Index"/> (again: changes the slot's flags).</summary>
    public void MapInto(VirtualMachine vm, MemorySlotFlags flags = MemorySlotFlags.None) =>
        vm.SetUserMemoryRegion((uint)Index, GuestAddress.Value, _mapping, flags);

    /// <summary>Whether the region's host memory starts on a <paramref name="alignment"/> boundary (huge pages).</summary>
    public bool IsHostAligned(ulong alignment) => _mapping.IsHostAligned(0, alignment);

    /// <summary>The page of this region a fault message names, if it is one of this region's.</summary>
    public bool TryGetFaultPage(in UffdMessage message, out long page)
    {
        bool inside = _mapping.TryGetOffset(message.HostAddress, out ulong offset);
        page = (long)(offset / GuestMemory.PageSize);
        return inside;
    }

    // userfaultfd operations on pages of this region: the region is the one place that knows where they are on the host.

    public UffdRangeOperations RegisterWith(UserfaultFd uffd, UffdRegisterMode mode) => uffd.Register(_mapping, mode);

    public void UnregisterFrom(UserfaultFd uffd) => uffd.Unregister(_mapping);

    /// <summary>Sets or clears write protection of pages [first, first+count).</summary>
    public void WriteProtect(UserfaultFd uffd, long first, long count, bool protect) =>
        uffd.WriteProtect(_mapping, PageOffset(first), PageBytes(count), protect);

    /// <summary>Write-protects or un-protects the whole region.</summary>
    public void WriteProtectAll(UserfaultFd uffd, bool protect) => uffd.WriteProtect(_mapping, 0, Size, protect);

    public void Wake(UserfaultFd uffd, long first, long count) => uffd.Wake(_mapping, PageOffset(first), PageBytes(count));

    /// <summary>Installs <paramref name="source"/> at byte <paramref name="offset"/> of the missing range (UFFDIO_COPY).</summary>
    public UffdResult TryCopy(UserfaultFd uffd, ulong offset, ReadOnlySpan<byte> source) => uffd.TryCopy(_mapping, offset, source);

    public UffdResult TryZeroPage(UserfaultFd uffd, ulong offset, ulong length) => uffd.TryZeroPage(_mapping, offset, length);

    /// <summary>Moves the whole staging page in at page <paramref name="first"/> (UFFDIO_MOVE: a huge page stays one).</summary>
    public UffdResult TryMoveIn(UserfaultFd uffd, long first, HugePageStaging staging) =>
        staging.MoveInto(uffd, _mapping, PageOffset(first));

    /// <summary>A PAGEMAP_SCAN over the region; runs are reported as byte offsets into it.</summary>
    public long Scan<TSink>(PageMapScanner scanner, in PageScanQuery query, ref TSink sink) where TSink : IPageRunSink =>
        scanner.Scan(_mapping, query, ref sink);

    /// <summary>The host address, for tests that read /proc or store the way a vCPU does (native code).</summary>
    internal unsafe ulong HostAddressForTests
    {
        get { fixed (byte* p = _mapping.GetSpan(0, 1)) return (ulong)p; }
    }

    private ulong PageOffset(long page)
    {
        if (page < 0 || page > PageCount) throw new ArgumentOutOfRangeException(nameof(page), $"page {page} outside a {PageCount}-page region");
        return (ulong)page * GuestMemory.PageSize;
    }

    private static ulong PageBytes(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return (ulong)count * GuestMemory.PageSize;
    }

    /// <summary>
    /// Reads one byte every <paramref name="stride"/> bytes. On never-touched transparent-huge-page memory this maps the
    /// huge zero page, so later write protection works per 2 MiB entry instead of installing 512 PTE markers.
    /// </summary>
    public void TouchForRead(ulong stride)
    {
        for (ulong offset = 0; offset < Size; offset += stride)
            _ = Volatile.Read(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(GetSpan(offset, 1)));
    }

    /// <summary>Faults [offset, offset+length) in from a system call (see <see cref="GuestMemory.PrepareHostAccess"/>).</summary>
    internal bool TryPopulate(ulong offset, ulong length, bool write) => _mapping.TryPopulate(offset, length, write);

    /// <summary>Drops [offset, offset+length) back to unpopulated zero pages (restore reuses a region this way).</summary>
    public void Discard(ulong offset, ulong length) => _mapping.Discard(offset, length);

    public void Dispose() => _mapping.Dispose();
}
