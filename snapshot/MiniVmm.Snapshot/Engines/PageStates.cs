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
