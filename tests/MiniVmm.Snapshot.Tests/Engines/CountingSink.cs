using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>
/// Wraps a real sink and counts how often each page of region 0 is handed to it, so a test can check "every page
/// exactly once". Can fail like a full disk after a number of pages.
/// </summary>
internal sealed class CountingSink(ISnapshotSink inner, long pages) : ISnapshotSink
{
    private readonly int[] _counts = new int[pages];
    private long _handed;

    /// <summary>Throw a disk-full IOException once this many pages have been handed over (null: never).</summary>
    public long? FailAfterPages { get; init; }

    public int CountOf(long page) => Volatile.Read(ref _counts[page]);
    public bool Aborted { get; private set; }
    public bool Completed { get; private set; }
    public IReadOnlyList<StateSection>? CompletedSections { get; private set; }

    public bool IsSeekable => inner.IsSeekable;
    public long PagesWritten => inner.PagesWritten;
    public long ZeroPages => inner.ZeroPages;
    public long BytesWritten => inner.BytesWritten;
    public TimeSpan FsyncTime => inner.FsyncTime;
    public Guid SnapshotId => inner.SnapshotId;
    public ulong TrailerChecksum => inner.TrailerChecksum;

    public long WritePages(int region, long firstPage, ReadOnlySpan<byte> data)
    {
        Count(firstPage, data.Length / SnapshotFormat.PageSize);
        return inner.WritePages(region, firstPage, data);
    }

    public long WriteZeroPages(int region, long firstPage, long count)
    {
        Count(firstPage, count);
        return inner.WriteZeroPages(region, firstPage, count);
    }

    private void Count(long firstPage, long count)
    {
        if (FailAfterPages is { } limit && Interlocked.Add(ref _handed, count) > limit)
            throw new IOException("No space left on device", 28); // as .NET reports ENOSPC: HResult is the errno
        for (long p = firstPage; p < firstPage + count; p++) Interlocked.Increment(ref _counts[p]);
    }

    public void Complete(IReadOnlyList<StateSection> sections)
    {
        inner.Complete(sections);
        Completed = true;
        CompletedSections = sections;
    }

    public void Abort()
    {
        Aborted = true;
        inner.Abort();
    }

    public void Interrupt() => inner.Interrupt();

    public void Dispose() => inner.Dispose();
}
