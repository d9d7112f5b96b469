using MiniVmm.Core.Memory;

namespace MiniVmm.Snapshot.Incremental;

/// <summary>
/// The fallback for kernels without UFFD_FEATURE_WP_ASYNC or PAGEMAP_SCAN: KVM's dirty log (vCPU writes) merged with
/// the host-write log of <see cref="GuestMemory"/> (device writes), both through <see cref="ISnapshotSource"/>. It
/// holds no userfaultfd, so <see cref="TakeChanged"/> has nothing to release. Unlike the WP_ASYNC tracker it misses
/// pages discarded with MADV_DONTNEED and costs the guest KVM's write-protected EPT entries all the time.
/// </summary>
public sealed class KvmDirtyLogTracker : IChangeTracker, IDisposable
{
    private readonly ISnapshotSource _source;
    private readonly GuestMemory _memory;
    private readonly ulong[][] _words;     // scratch for one region's log
    private readonly Lock _lock = new();
    private PageBitmap[] _seed;
    private bool _tracking, _disposed;

    /// <summary>Turns dirty logging on and starts tracking now. vCPUs paused, or writes until the call may be missed.</summary>
    public KvmDirtyLogTracker(ISnapshotSource source)
    {
        _source = source;
        _memory = source.Memory;
        _words = _memory.Regions.Select(r => new ulong[(r.PageCount + 63) / 64]).ToArray();
        _seed = EmptyBitmaps();
        StartTracking();
    }

    public string Method => "KVM dirty log";

    private bool IsTrackingLocked => _tracking;

    public bool IsTracking
    {
        get { lock (_lock) return _tracking; }
    }

    public PageBitmap[] TakeChanged()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_tracking) throw new InvalidOperationException("the tracker is not tracking (TakeChanged without Resume)");
            var changed = _seed;
            for (int ri = 0; ri < _words.Length; ri++)
            {
                FetchAndClear(ri);
                var words = _words[ri];
                for (int w = 0; w < words.Length; w++)
                    for (ulong bits = words[w]; bits != 0; bits &= bits - 1)
                        changed[ri].Set(w * 64L + System.Numerics.BitOperations.TrailingZeroCount(bits));
            }
            // Logging stays on: a snapshot that needs it off (or on) sets it itself; Resume puts it back.
            _tracking = false;
            _seed = EmptyBitmaps();
            return changed;
        }
    }

    /// <inheritdoc />
    public void Include(PageBitmap[] pages)
    {
        lock (_lock)
        {
            if (!_disposed && IsTrackingLocked) PageBitmap.UnionInto(_seed, pages);
        }
    }

    public void Resume(PageBitmap[] alreadyWritten)
    {
        ArgumentNullException.ThrowIfNull(alreadyWritten);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_tracking) throw new InvalidOperationException("the tracker is already tracking (Resume twice)");
            var seed = EmptyBitmaps();
            PageBitmap.UnionInto(seed, alreadyWritten);
            StartTracking();
            _seed = seed;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _source.SetDirtyLogging(false);
        }
    }

    /// <summary>
    /// (Re-)enables logging — a dirty-log snapshot in between turns it off at its end — and drops what the log holds:
    /// writes made while idle belong to the seed, and a log left on from before would hold stale pages.
    /// </summary>
    private void StartTracking()
    {
        try
        {
            _source.SetDirtyLogging(true);
            for (int ri = 0; ri < _words.Length; ri++) FetchAndClear(ri);
        }
        catch (Exception e) when (e is not ChangeTrackingException)
        {
            throw new ChangeTrackingException("cannot start KVM dirty logging: " + e.Message, e);
        }
        _tracking = true;
    }

    private void FetchAndClear(int region)
    {
        Array.Clear(_words[region]);
        _source.GetAndClearDirtyLog(region, _words[region]);
    }

    private PageBitmap[] EmptyBitmaps() => PageBitmap.ForRegions(_memory.Regions.Select(r => r.PageCount));
}
