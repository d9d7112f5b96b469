namespace MiniVmm.Snapshot;

/// <summary>
/// The pages a running VM wrote since its last snapshot (the changed set of the next incremental link). While it
/// tracks, the tracker holds guest RAM registered with its own userfaultfd; a write-tracking snapshot takes the RAM over
/// at the freeze and hands it back at its end, both times with the vCPUs paused, so that no write goes unseen.
/// </summary>
public interface IChangeTracker
{
    /// <summary>How changes are tracked, for logs ("userfaultfd WP_ASYNC + PAGEMAP_SCAN").</summary>
    string Method { get; }

    /// <summary>Whether it holds the RAM and records writes now (false before the first Resume and after TakeChanged).</summary>
    bool IsTracking { get; }

    /// <summary>
    /// vCPUs paused: stops tracking, releases guest RAM (so the snapshot can register it) and returns the pages written
    /// since tracking (re)started, one bitmap per region. The tracker is idle until <see cref="Resume"/>.
    /// </summary>
    PageBitmap[] TakeChanged();

    /// <summary>
    /// vCPUs paused: tracks again from now on, starting from <paramref name="alreadyWritten"/> (pages written while the
    /// snapshot held the RAM; they belong to the next link).
    /// </summary>
    void Resume(PageBitmap[] alreadyWritten);

    /// <summary>
    /// Counts <paramref name="pages"/> as changed too (a link handed the RAM back, then could not be written: its
    /// changed set must go into the next one). Any thread; ignored when not tracking.
    /// </summary>
    void Include(PageBitmap[] pages);
}
