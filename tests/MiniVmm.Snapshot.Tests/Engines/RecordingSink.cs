using MiniVmm.Snapshot.Engines;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>
/// An in-memory sink for PageSaver and FaultBlockWriter tests: records each write (region, first page, bytes, the
/// writing thread, and whether the pages were already marked saved at that moment). Can block the first write until
/// released, or throw.
/// </summary>
internal sealed class RecordingSink(PageStates[]? states = null) : ISnapshotSink
{
    public sealed record Write(int Region, long First, byte[] Data, int ThreadId, bool AlreadySaved);

    private readonly object _gate = new();
    private readonly List<Write> _writes = new();
    private long _pages;

    public ManualResetEventSlim? HoldFirstWrite { get; init; }
    public ManualResetEventSlim FirstWriteStarted { get; } = new();
    public Exception? Throw { get; set; }

    public IReadOnlyList<Write> Writes { get { lock (_gate) return _writes.ToList(); } }

    public bool IsSeekable => true;
    public long PagesWritten => Interlocked.Read(ref _pages);
    public long ZeroPages => 0;
    public long BytesWritten => PagesWritten * SnapshotFormat.PageSize;
    public TimeSpan FsyncTime => TimeSpan.Zero;

    public long WritePages(int region, long firstPage, ReadOnlySpan<byte> pages)
    {
        long count = pages.Length / SnapshotFormat.PageSize;
        bool saved = states is not null && Enumerable.Range(0, (int)count).All(i => states[region].IsSaved(firstPage + i));
        var copy = pages.ToArray();
        bool first = !FirstWriteStarted.IsSet;
        FirstWriteStarted.Set();
        if (first) HoldFirstWrite?.Wait();
        if (Throw is { } e) throw e;
        lock (_gate) _writes.Add(new Write(region, firstPage, copy, Environment.CurrentManagedThreadId, saved));
        Interlocked.Add(ref _pages, count);
        return count * SnapshotFormat.PageSize;
    }

    /// <summary>Zero runs recorded through <see cref="WriteZeroPages"/> (their pages were never read).</summary>
    public IReadOnlyList<(long First, long Count, bool AlreadySaved)> ZeroRuns { get { lock (_gate) return _zeroRuns.ToList(); } }
    private readonly List<(long First, long Count, bool AlreadySaved)> _zeroRuns = new();

    public long WriteZeroPages(int region, long firstPage, long count)
    {
        bool saved = states is not null && Enumerable.Range(0, (int)count).All(i => states[region].IsSaved(firstPage + i));
        lock (_gate) _zeroRuns.Add((firstPage, count, saved));
        return 0;
    }

    public void Complete(IReadOnlyList<StateSection> sections) { }
    public void Abort() { }
    public void Dispose() { }
}
