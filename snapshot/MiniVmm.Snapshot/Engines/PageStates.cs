namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// Per-page save state of one memory region, shared by the fault handler and the scanner. A page is claimed by exactly
/// one thread (Unsaved → Claimed), copied out, then marked Saved; only a fully Saved range may be un-protected.
/// One byte per page: 128 KiB for 512 MiB of RAM, allocated before the freeze.
/// </summary>
public sealed class PageStates(long pageCount)
{
    public const byte Unsaved = 0, Claimed = 1, Saved = 2;
    private readonly byte[] _states = new byte[pageCount];
    private long _saved;

    public long PageCount => _states.LongLength;
    public long SavedCount => Interlocked.Read(ref _saved);

    /// <summary>True for the single caller that moves the page from Unsaved to Claimed.</summary>
    public bool TryClaim(long page) => Interlocked.CompareExchange(ref _states[page], Claimed, Unsaved) == Unsaved;

    public void MarkSaved(long page)
    {
        Volatile.Write(ref _states[page], Saved);
        Interlocked.Increment(ref _saved);
    }

    /// <summary>
    /// Marks every page outside <paramref name="changed"/> saved before any thread claims one (an incremental link:
    /// those pages are the parent's, so neither the scan nor a fault saves them).
    /// </summary>
    public void MarkSavedExcept(PageBitmap changed)
    {
        if (changed.PageCount != PageCount) throw new ArgumentException("the changed set is for another region");
        long marked = 0;
        for (long w = 0; w < changed.WordCount; w++)
        {
            ulong bits = changed.Word(w);
            long first = w * 64;
            int n = (int)Math.Min(64, PageCount - first);
            if (bits == 0)
            {
                _states.AsSpan((int)first, n).Fill(Saved);
                marked += n;
                continue;
            }
            for (int b = 0; b < n; b++)
                if ((bits & (1UL << b)) == 0) { _states[first + b] = Saved; marked++; }
        }
        Interlocked.Add(ref _saved, marked);
    }

    public bool IsSaved(long page) => Volatile.Read(ref _states[page]) == Saved;

    /// <summary>Waits (spinning: the other thread is mid-copy of at most one block) until every page of the range is Saved.</summary>
    public void WaitUntilSaved(long first, long count, CancellationToken cancel)
    {
        for (long p = first; p < first + count; p++)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _states[p]) != Saved)
            {
                if (cancel.IsCancellationRequested) return;
                spin.SpinOnce();
            }
        }
    }
}
