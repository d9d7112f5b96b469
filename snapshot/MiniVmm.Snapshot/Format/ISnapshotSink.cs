namespace MiniVmm.Snapshot.Format;

/// <summary>
/// Destination of one snapshot: the seekable file form (<see cref="SnapshotFileSink"/>) or the stream form
/// (<see cref="SnapshotStreamSink"/>). <see cref="WritePages"/> may be called from several threads at once for distinct
/// pages; <see cref="Complete"/> and <see cref="Abort"/> are called once, after the writers stopped.
/// </summary>
public interface ISnapshotSink : IDisposable
{
    bool IsSeekable { get; }

    /// <summary>
    /// Stores <c>pages.Length / 4096</c> consecutive pages of region <paramref name="region"/> starting at
    /// <paramref name="firstPage"/>. <paramref name="pages"/> may be a span over live guest memory: it is copied once and
    /// never kept. All-zero pages are detected and not stored. A page written again replaces the earlier content (a page
    /// that became zero is removed again). Thread-safe for distinct pages. Returns the bytes this call wrote to the
    /// destination (what a bandwidth cap charges: zero pages that were never stored cost nothing).
    /// </summary>
    long WritePages(int region, long firstPage, ReadOnlySpan<byte> pages);

    /// <summary>
    /// <see cref="WritePages"/> for pages in a private buffer that nothing changes during the call (a copy the engine
    /// made already): the sink classifies, hashes and stores them where they are instead of copying them first.
    /// </summary>
    long WritePrivatePages(int region, long firstPage, ReadOnlySpan<byte> pages) => WritePages(region, firstPage, pages);

    /// <summary>
    /// Records pages [firstPage, firstPage+count) as all-zero without being handed their bytes (the engine knows they
    /// map the kernel's zero page): the same result as <see cref="WritePages"/> with zeros, counted as zero pages.
    /// Returns the bytes this call wrote to the destination. This default hands zero buffers to
    /// <see cref="WritePrivatePages"/>; the file and stream forms record the run directly.
    /// </summary>
    long WriteZeroPages(int region, long firstPage, long count)
    {
        long written = 0;
        for (long done = 0; done < count; done += PageBatch.MaxPages)
        {
            int n = (int)Math.Min(PageBatch.MaxPages, count - done);
            written += WritePrivatePages(region, firstPage + done, PageBatch.ZeroPages.AsSpan(0, n * SnapshotFormat.PageSize));
        }
        return written;
    }

    /// <summary>Non-zero pages stored (a page written twice counts twice).</summary>
    long PagesWritten { get; }

    /// <summary>Zero pages seen and skipped.</summary>
    long ZeroPages { get; }

    /// <summary>Bytes written to the destination so far.</summary>
    long BytesWritten { get; }

    /// <summary>
    /// Writes the state sections and the trailer, flushes, fsyncs (files, unless disabled) and renames
    /// PATH.partial to PATH. On failure the partial output is removed and the exception propagates.
    /// </summary>
    void Complete(IReadOnlyList<StateSection> sections);

    /// <summary>Cancels: deletes the partial file or closes the stream without an end record. Never throws; no-op after Complete.</summary>
    void Abort();

    /// <summary>
    /// Makes writes that wait on the destination (a full pipe) fail at once, and every later write too; safe from any
    /// thread at any time. The engines call it when a snapshot is cancelled or fails, so that no thread of theirs stays
    /// held by a reader that stopped reading. The sink can then only be aborted.
    /// </summary>
    void Interrupt() { }

    /// <summary>The snapshot id written into header, state and trailer.</summary>
    Guid SnapshotId => Guid.Empty;

    /// <summary>The trailer's own checksum once <see cref="Complete"/> succeeded (0 before).</summary>
    ulong TrailerChecksum => 0;

    /// <summary>Time spent in fsync (file and directory) during <see cref="Complete"/>; zero for streams.</summary>
    TimeSpan FsyncTime { get; }
}
