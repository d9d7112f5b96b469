using KvmSharp;

namespace MiniVmm.Core.Memory;

/// <summary>
/// A 2 MiB-aligned, transparent-huge-page-advised scratch area of exactly one huge page. Restore fills it and then
/// moves it into guest RAM with UFFDIO_MOVE, so the guest gets a 2 MiB page (one KVM mapping, not 512). After a move
/// the area is empty again and the next write allocates a fresh huge page.
/// </summary>
public sealed class HugePageStaging : IDisposable
{
    public const int Size = 2 << 20;

    private readonly MemoryMapping _mapping;
    private readonly ulong _offset;

    public HugePageStaging()
    {
        // Twice the size, so that an aligned 2 MiB window exists whatever address the kernel picks.
        _mapping = MemoryMapping.Anonymous(2 * (ulong)Size, hugePages: true);
        _offset = _mapping.FirstAlignedOffset(Size);
    }

    /// <summary>The staging page; valid until the next move takes its content away.</summary>
    public Span<byte> Span => _mapping.GetSpan(_offset, Size);

    /// <summary>Moves the staging page into a missing range of <paramref name="destination"/> (UFFDIO_MOVE).</summary>
    internal UffdResult MoveInto(UserfaultFd uffd, MemoryMapping destination, ulong offset) =>
        uffd.TryMove(destination, offset, _mapping, _offset, Size);

    /// <summary>Drops whatever a partial move left behind, so the next fill starts from an empty area.</summary>
    public void Discard() => _mapping.Discard(_offset, Size);

    public void Dispose() => _mapping.Dispose();
}
