using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Engines;

/// <summary>Shared completion for the reference engines: complete or abort the sink and report.</summary>
internal static class CopyRunCompletion
{
    public static void Finish(SnapshotJob job, ISnapshotSink sink, IReadOnlyList<StateSection>? sections, Exception? error,
        long start, long writeDone, TimeSpan downtime, int iterations, bool converged, ILogger log)
    {
        bool cancelled = job.CancellationToken.IsCancellationRequested && error is null;
        if (error is null && !cancelled)
        {
            try { sink.Complete(sections ?? []); }
            catch (Exception e) { error = e; }
        }
        if (error is not null || cancelled)
        {
            try { sink.Abort(); } catch (Exception e) { log.LogWarning(e, "could not remove the partial snapshot"); }
        }
        job.Finish(new SnapshotResult
        {
            Engine = job.Engine,
            Succeeded = error is null && !cancelled,
            Cancelled = cancelled,
            Error = error is null ? (cancelled ? "cancelled" : null) : WriteTrackingRun.Describe(error),
            PagesSaved = sink.PagesWritten,
            ZeroPages = sink.ZeroPages,
            BytesWritten = sink.BytesWritten,
            Downtime = downtime,
            WriteTime = Stopwatch.GetElapsedTime(start, writeDone == 0 ? Stopwatch.GetTimestamp() : writeDone),
            TotalTime = Stopwatch.GetElapsedTime(start),
            FsyncTime = sink.FsyncTime,
            Iterations = iterations,
            Converged = converged,
        });
    }
}
