using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp;

namespace MiniVmm.Core.Memory;

/// <summary>
/// Guest RAM: the only way into it. Every access is checked (overflow-safe) against the regions and copies bytes in or
/// out; nobody outside this layer and KvmSharp holds a pointer into guest memory.
/// </summary>
public sealed partial class GuestMemory : IDisposable
{
    public const ulong PageSize = 4096;
    private readonly GuestMemoryRegion[] _regions;

    private GuestMemory(GuestMemoryRegion[] regions, bool fileBacked = false)
    {
        _regions = regions;
        IsFileBacked = fileBacked;
    }

    public IReadOnlyList<GuestMemoryRegion> Regions => _regions;

    /// <summary>
    /// True for <see cref="MapPrivate"/> memory: a private file mapping, which userfaultfd cannot write-protect (the
    /// kernel allows UFFD write protection on anonymous, shmem and hugetlbfs memory only).
    /// </summary>
    public bool IsFileBacked { get; }

    /// <summary>Total RAM in bytes.</summary>
    public ulong Size => _regions.Aggregate(0UL, (s, r) => s + r.Size);

    /// <summary>
    /// <paramref name="size"/> bytes of anonymous zero-filled RAM laid out by <see cref="GuestMemoryLayout"/> (one
    /// region below the 32-bit MMIO hole, a second from 4 GiB when it does not fit). <paramref name="hugePages"/> asks
    /// for THP.
    /// </summary>
    public static GuestMemory CreateAnonymous(ulong size, bool hugePages = false)
    {
        if (size == 0 || size % PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(size), $"guest memory size {size} must be a non-zero multiple of {PageSize}");
        var regions = new List<GuestMemoryRegion>();
        try
        {
            foreach (var (gpa, length) in GuestMemoryLayout.RamRanges(size))
                regions.Add(new GuestMemoryRegion(regions.Count, new GuestAddress(gpa), MemoryMapping.Anonymous(length, hugePages)));
            return new GuestMemory(regions.ToArray());
        }
        catch
        {
            foreach (var r in regions) r.Dispose();
            throw;
        }
    }

    /// <summary>
    /// RAM mapped copy-on-write (MAP_PRIVATE) from a file: region i is <c>regions[i].Size</c> bytes at file offset
    /// <c>regions[i].FileOffset</c>, guest address <c>regions[i].GuestAddress</c>. Restoring a snapshot this way is
    /// instant; pages are read on first touch and guest writes never reach the file. The file must not change while
    /// mapped.
    /// </summary>
    public static GuestMemory MapPrivate(SafeHandle file, IReadOnlyList<(ulong GuestAddress, ulong Size, long FileOffset)> regions)
    {
        var mapped = new List<GuestMemoryRegion>();
        try
        {
            foreach (var (gpa, size, offset) in regions)
            {
                if (size == 0 || size % PageSize != 0 || offset % (long)PageSize != 0)
                    throw new ArgumentException($"region 0x{gpa:x}+{size} at file offset {offset} is not page aligned");
                mapped.Add(new GuestMemoryRegion(mapped.Count, new GuestAddress(gpa), MemoryMapping.OfFile(file, size, offset, writable: true, shared: false)));
            }
            return new GuestMemory(mapped.ToArray(), fileBacked: true);
        }
        catch
        {
            foreach (var r in mapped) r.Dispose();
            throw;
        }
    }

    /// <summary>True when [gpa, gpa+length) lies entirely inside one region (length 0 included).</summary>
    public bool Contains(GuestAddress gpa, ulong length) => TryFind(gpa, length, out _, out _);

    public void Read(GuestAddress gpa, Span<byte> destination) => Resolve(gpa, destination.Length, write: false).CopyTo(destination);

    public void Write(GuestAddress gpa, ReadOnlySpan<byte> source)
    {
        source.CopyTo(Resolve(gpa, source.Length, write: true));
        NoteHostWrite(gpa, (ulong)source.Length);
    }

    public T Read<T>(GuestAddress gpa) where T : unmanaged => MemoryMarshal.Read<T>(Resolve(gpa, Unsafe.SizeOf<T>(), write: false));

    public void Write<T>(GuestAddress gpa, T value) where T : unmanaged
    {
        MemoryMarshal.Write(Resolve(gpa, Unsafe.SizeOf<T>(), write: true), in value);
        NoteHostWrite(gpa, (ulong)Unsafe.SizeOf<T>());
    }

    /// <summary>Fills [gpa, gpa+length) with zero bytes.</summary>
    public void Clear(GuestAddress gpa, ulong length)
    {
        while (length > 0)
        {
            int chunk = (int)Math.Min(length, 1UL << 30);
            Resolve(gpa, chunk, write: true).Clear();
            NoteHostWrite(gpa, (ulong)chunk);
            gpa += (ulong)chunk;
            length -= (ulong)chunk;
        }
    }

    /// <summary>The region and offset holding <paramref name="gpa"/>, or false.</summary>
    public bool TryFind(GuestAddress gpa, ulong length, out GuestMemoryRegion region, out ulong offset)
    {
        foreach (var r in _regions)
        {
            ulong end = unchecked(gpa.Value + length);
            if (gpa >= r.GuestAddress && end >= gpa.Value && end <= r.EndAddress.Value)
            {
                region = r;
                offset = gpa - r.GuestAddress;
                return true;
            }
        }
        region = null!;
        offset = 0;
        return false;
    }

    private Span<byte> Resolve(GuestAddress gpa, int length, bool write)
    {
        if (!TryFind(gpa, (ulong)length, out var region, out ulong offset))
            throw new GuestMemoryException($"guest physical range {gpa}+0x{length:x} is outside guest RAM ({Size} bytes)");
        if (Volatile.Read(ref _userfaultHolders) > 0) region.TryPopulate(offset, (ulong)length, write);
        return region.GetSpan(offset, length);
    }

    private int _userfaultHolders;

    /// <summary>
    /// Declares that a userfaultfd may block accesses to guest RAM until the returned scope ends (a lazy restore's
    /// missing pages, a live snapshot's write protection). Meanwhile every host access first faults its pages in from a
    /// system call: a managed thread blocked in a page fault cannot be stopped for a garbage collection, and the thread
    /// that serves the fault is managed too, so a collection starting then would wait for ever (vCPUs are safe: they
    /// fault inside KVM_RUN).
    /// </summary>
    public IDisposable HoldForUserfaults()
    {
        Interlocked.Increment(ref _userfaultHolders);
        return new UserfaultHold(this);
    }

    /// <summary>
    /// For code that takes a span of guest RAM itself (<see cref="GuestMemoryRegion.GetSpan"/>): faults
    /// [gpa, gpa+length) in from a system call first while a userfaultfd holds RAM. A no-op otherwise.
    /// </summary>
    public void PrepareHostAccess(GuestAddress gpa, ulong length, bool write)
    {
        if (Volatile.Read(ref _userfaultHolders) == 0) return;
        if (TryFind(gpa, length, out var region, out ulong offset)) region.TryPopulate(offset, length, write);
    }

    private sealed class UserfaultHold(GuestMemory memory) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) Interlocked.Decrement(ref memory._userfaultHolders);
        }
    }

    public void Dispose()
    {
        foreach (var r in _regions) r.Dispose();
    }
}
