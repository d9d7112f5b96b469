using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// Owns one mmap'ed range (guest RAM, a vCPU's kvm_run page, a mapped snapshot file) and unmaps it exactly once.
/// A <see cref="SafeBuffer"/>, so readers get bounds-checked access and the runtime keeps it alive across P/Invokes.
/// </summary>
public sealed class MemoryMapping : SafeBuffer
{
    private MemoryMapping(nint address, ulong length) : base(ownsHandle: true)
    {
        SetHandle(address);
        Initialize(length);
    }

    public ulong Length => ByteLength;

    /// <summary>Anonymous private zero-filled memory, reserved lazily (MAP_NORESERVE): pages cost nothing until touched.</summary>
    public static MemoryMapping Anonymous(ulong length, bool hugePages = false)
    {
        if (length == 0) throw new ArgumentOutOfRangeException(nameof(length), "a mapping needs a non-zero length");
        nint p = Libc.mmap(0, (nuint)length, Libc.PROT_READ | Libc.PROT_WRITE,
            Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
        LinuxException.CheckPtr(p, $"mmap({length} bytes of anonymous memory)");
        var mapping = new MemoryMapping(p, length);
        if (hugePages) mapping.Advise(Libc.MADV_HUGEPAGE); // best effort: THP may be disabled system-wide
        return mapping;
    }

    /// <summary>Maps part of a file: shared (the kernel's kvm_run page) or private copy-on-write (a snapshot's memory).</summary>
    public static MemoryMapping OfFile(SafeHandle fd, ulong length, long offset, bool writable, bool shared)
    {
        int prot = Libc.PROT_READ | (writable ? Libc.PROT_WRITE : 0);
        nint p = Libc.mmap_handle(0, (nuint)length, prot, shared ? Libc.MAP_SHARED : Libc.MAP_PRIVATE, fd, offset);
        LinuxException.CheckPtr(p, $"mmap({length} bytes of a file at offset {offset})");
        return new MemoryMapping(p, length);
    }

    /// <summary>madvise over the whole mapping; returns false (without throwing) where the kernel declines.</summary>
    public bool Advise(int advice) => Libc.madvise(handle, (nuint)ByteLength, advice) == 0;

    /// <summary>Throws away the content of [offset, offset+length) (MADV_DONTNEED): anonymous pages read as zero again.</summary>
    public void Discard(ulong offset, ulong length)
    {
        CheckRange(offset, length);
        LinuxException.Check(Libc.madvise(handle + (nint)offset, (nuint)length, Libc.MADV_DONTNEED), "madvise(MADV_DONTNEED)");
    }

    /// <summary>
    /// Faults in the pages of [offset, offset+length) from inside the kernel (MADV_POPULATE_READ or _WRITE, Linux 5.14+),
    /// as a write when <paramref name="write"/>. A fault a userfaultfd handles (a missing page of a lazy restore, a
    /// write-protected page of a live snapshot) then blocks this thread in a system call rather than in managed code,
    /// where the runtime could not stop it for a garbage collection. False when the kernel declines (the caller's access
    /// then faults as usual).
    /// </summary>
    public bool TryPopulate(ulong offset, ulong length, bool write)
    {
        if (length == 0) return true;
        CheckRange(offset, length);
        ulong first = offset & ~(PopulatePageSize - 1);
        ulong end = Math.Min((offset + length + PopulatePageSize - 1) & ~(PopulatePageSize - 1), ByteLength);
        int advice = write ? Libc.MADV_POPULATE_WRITE : Libc.MADV_POPULATE_READ;
        while (true)
        {
            if (Libc.madvise(handle + (nint)first, (nuint)(end - first), advice) == 0) return true;
            Errno errno = LastErrno.Get();
            if (errno is not (Errno.EINTR or Errno.EAGAIN)) return false;
        }
    }

    private const ulong PopulatePageSize = 4096;

    /// <summary>The host address, for the kernel APIs in this assembly that take one.</summary>
    internal nint DangerousGetAddress() => handle;

    /// <summary>
    /// Borrows [offset, offset+length) for one kernel call: bounds-checked, and the mapping cannot be unmapped until the
    /// lease is disposed (a concurrent Dispose waits for the call instead of freeing under it).
    /// </summary>
    internal MappingLease Lease(ulong offset, ulong length)
    {
        CheckRange(offset, length);
        return new MappingLease(this, offset);
    }

    /// <summary>Whether the host address of <paramref name="offset"/> is a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public bool IsHostAligned(ulong offset, ulong alignment) => (((ulong)handle + offset) & (alignment - 1)) == 0;

    /// <summary>The smallest offset whose host address is a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public ulong FirstAlignedOffset(ulong alignment) => ((ulong)handle + alignment - 1 & ~(alignment - 1)) - (ulong)handle;

    /// <summary>
    /// The offset of a host address the kernel reported (a userfaultfd fault), if it lies in this mapping.
    /// </summary>
    public bool TryGetOffset(ulong hostAddress, out ulong offset)
    {
        offset = hostAddress - (ulong)handle;
        return hostAddress >= (ulong)handle && offset < ByteLength;
    }

    /// <summary>A span over [offset, offset+length) after an overflow-safe bounds check.</summary>
    public unsafe Span<byte> GetSpan(ulong offset, int length)
    {
        CheckRange(offset, (ulong)length);
        // SAFETY: the range was checked against the mapping's length; the caller must not keep the span past Dispose.
        return new Span<byte>((byte*)handle + offset, length);
    }

    private void CheckRange(ulong offset, ulong length)
    {
        ulong end = offset + length;
        if (end < offset || end > ByteLength)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range 0x{offset:x}+0x{length:x} outside a 0x{ByteLength:x}-byte mapping");
    }

    protected override bool ReleaseHandle() => Libc.munmap(handle, (nuint)ByteLength) == 0;
}
