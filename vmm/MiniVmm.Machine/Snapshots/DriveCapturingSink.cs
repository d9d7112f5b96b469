using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// A snapshot sink that completes only when the drives are captured too: <see cref="Complete"/> waits for the
/// <see cref="DriveSnapshot"/> (RAM is saved by then), appends its records to the state sections and completes the
/// snapshot file; a failure or an abort removes the drive files with the snapshot's. Engines stay unaware of drives.
/// </summary>
internal sealed class DriveCapturingSink(ISnapshotSink inner, DriveSnapshot drives) : ISnapshotSink
{
    private readonly CancellationTokenSource _interrupt = new();
    private bool _completed;

    public bool IsSeekable => inner.IsSeekable;
    public long WritePages(int region, long firstPage, ReadOnlySpan<byte> pages) => inner.WritePages(region, firstPage, pages);
    public long WritePrivatePages(int region, long firstPage, ReadOnlySpan<byte> pages) => inner.WritePrivatePages(region, firstPage, pages);
    public long WriteZeroPages(int region, long firstPage, long count) => inner.WriteZeroPages(region, firstPage, count);
    public long PagesWritten => inner.PagesWritten;
    public long ZeroPages => inner.ZeroPages;
    public long BytesWritten => inner.BytesWritten;
    public Guid SnapshotId => inner.SnapshotId;
    public ulong TrailerChecksum => inner.TrailerChecksum;
    public TimeSpan FsyncTime => inner.FsyncTime;

    public void Complete(IReadOnlyList<StateSection> sections)
    {
        try
        {
            var records = drives.Complete(_interrupt.Token);
            inner.Complete([.. sections, .. records]);
        }
        catch
        {
            drives.Abort();
            throw;
        }
        drives.Commit();
        _completed = true;
    }

    public void Abort()
    {
        if (_completed) return;
        drives.Abort();
        inner.Abort();
    }

    public void Interrupt()
    {
        try { _interrupt.Cancel(); } catch (ObjectDisposedException) { }
        inner.Interrupt();
    }

    public void Dispose()
    {
        inner.Dispose();
        _interrupt.Dispose();
    }
}
