namespace MiniVmm.Devices.Virtio.Block;

/// <summary>
/// The 4 KiB pages of a drive written since a snapshot's freeze, so the next snapshot (an incremental link) stores only
/// those: the drive's counterpart of RAM's written-page tracking. Pages, not capture blocks: a guest's 4 KiB random
/// writes would otherwise cost a link 64 KiB each. The block backend marks every write and zeroing before it happens;
/// a snapshot takes the set at its freeze (the device quiesced, nothing writing) and the log starts empty again. One
/// bit per page (32 KiB per GiB), marked without a lock (device threads write concurrently).
/// </summary>
public sealed class DriveChangeLog
{
    public const int PageSize = 4096;

    private ulong[] _written;

    public DriveChangeLog(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        PageCount = (length + PageSize - 1) / PageSize;
        _written = new ulong[BlockBits.Words(PageCount)];
    }

    public long Length { get; }
    public long PageCount { get; }

    /// <summary>[<paramref name="offset"/>, +<paramref name="length"/>) is about to be written.</summary>
    public void Mark(long offset, long length)
    {
        if (length <= 0 || offset >= Length || offset < 0) return;
        long first = offset / PageSize;
        long last = Math.Min((offset + length - 1) / PageSize, PageCount - 1);
        var words = Volatile.Read(ref _written);
        for (long p = first; p <= last; p++)
        {
            ulong bit = 1UL << (int)(p & 63);
            if ((Volatile.Read(ref words[p >> 6]) & bit) == 0) Interlocked.Or(ref words[p >> 6], bit);
        }
    }

    /// <summary>
    /// The pages written since the last take, and an empty log from now on. Call while nothing writes the drive (a
    /// freeze): a write racing the swap could be marked in the old set only and be missed by the next link.
    /// </summary>
    public ulong[] TakeAndReset() => Interlocked.Exchange(ref _written, new ulong[BlockBits.Words(PageCount)]);

    /// <summary>A link that took <paramref name="taken"/> failed: its pages count as written again for the next one.</summary>
    public void MergeBack(ReadOnlySpan<ulong> taken)
    {
        var words = Volatile.Read(ref _written);
        for (int w = 0; w < Math.Min(taken.Length, words.Length); w++)
            if (taken[w] != 0) Interlocked.Or(ref words[w], taken[w]);
    }

    /// <summary>Pages marked now (for logs and tests).</summary>
    public long Count => BlockBits.Count(Volatile.Read(ref _written));
}

/// <summary>One bit per drive page or block in 64-bit words (unit b is bit b%64 of word b/64).</summary>
public static class BlockBits
{
    public static int Words(long blocks) => checked((int)((blocks + 63) / 64));

    public static bool Get(ReadOnlySpan<ulong> bits, long block) =>
        (ulong)(block >> 6) < (ulong)bits.Length && (bits[(int)(block >> 6)] & 1UL << (int)(block & 63)) != 0;

    public static void Set(Span<ulong> bits, long block) => bits[(int)(block >> 6)] |= 1UL << (int)(block & 63);

    public static void Clear(Span<ulong> bits, long block) => bits[(int)(block >> 6)] &= ~(1UL << (int)(block & 63));

    public static long Count(ReadOnlySpan<ulong> bits)
    {
        long n = 0;
        foreach (ulong w in bits) n += System.Numerics.BitOperations.PopCount(w);
        return n;
    }
}
