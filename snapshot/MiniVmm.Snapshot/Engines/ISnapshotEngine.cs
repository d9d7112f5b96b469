using Microsoft.Extensions.Logging;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// A way of taking a snapshot. <see cref="Start"/> runs on the main-loop thread: it prepares, freezes (or not) and
/// returns quickly; the copying runs on the engine's own threads and ends in <see cref="SnapshotJob.Completion"/>.
/// Preparation failures throw <see cref="SnapshotException"/> before the VM is touched.
/// </summary>
public interface ISnapshotEngine
{
    string Name { get; }
    SnapshotJob Start(ISnapshotSource source, ISnapshotSink sink, SnapshotOptions options, ILogger log);
}

public sealed class SnapshotException(string message, Exception? inner = null) : Exception(message, inner);

public static class SnapshotEngines
{
    public static ISnapshotEngine For(SnapshotMode mode) => mode switch
    {
        SnapshotMode.WriteTracking => new WriteTrackingEngine(),
        SnapshotMode.StopAndCopy => new StopAndCopyEngine(),
        SnapshotMode.DirtyLog => new DirtyLogPrecopyEngine(),
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    public static string NameOf(SnapshotMode mode) => mode switch
    {
        SnapshotMode.WriteTracking => "write-tracking",
        SnapshotMode.StopAndCopy => "stop-copy",
        _ => "dirty-log",
    };
}
