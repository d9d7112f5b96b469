using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Engines;

/// <summary>What every engine shares: its saver and job, the full copy pass, the resume wait, and the completion.</summary>
internal static class ReferenceEngineSupport
{
    /// <summary>A page saver over all of guest RAM and the job that reports its progress.</summary>
    public static (PageSaver Saver, SnapshotJob Job) CreateSaverAndJob(string engine, GuestMemory memory, ISnapshotSink sink)
    {
        var saver = new PageSaver(memory, sink, PageSaver.CreateStates(memory));
        var job = new SnapshotJob(engine, memory.Regions.Sum(r => r.PageCount))
        {
            PagesDone = () => saver.States.Sum(s => s.SavedCount),
            BytesWritten = () => sink.BytesWritten,
        };
        // A cancel or failure must not wait for a destination that stopped reading.
        job.CancellationToken.Register(sink.Interrupt);
        return (saver, job);
    }

    /// <summary>Visits all of guest RAM in chunks of <paramref name="chunkPages"/> until done or cancelled.</summary>
    public static void ForEachChunk(GuestMemory memory, int chunkPages, Action<int, long, long> chunk, CancellationToken cancel)
    {
        for (int ri = 0; ri < memory.Regions.Count && !cancel.IsCancellationRequested; ri++)
            for (long first = 0; first < memory.Regions[ri].PageCount && !cancel.IsCancellationRequested; first += chunkPages)
                chunk(ri, first, Math.Min(chunkPages, memory.Regions[ri].PageCount - first));
    }

    /// <summary>Resumes the vCPUs through the start bottom-half and waits for it; returns when they ran again (0 if not seen).</summary>
    public static long ResumeAndWait(ISnapshotSource source)
    {
        long resumedAt = 0;
        using var resumed = new ManualResetEventSlim();
        source.ScheduleResume(() => { resumedAt = Stopwatch.GetTimestamp(); resumed.Set(); });
        resumed.Wait(TimeSpan.FromSeconds(10));
        return resumedAt;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    public static void Finish(SnapshotJob job, ISnapshotSink sink, IReadOnlyList<StateSection>? sections, Exception? error,
        long start, long writeDone, TimeSpan downtime, int iterations, bool converged, ILogger log)
    {
        long writeEnd = writeDone == 0 ? Stopwatch.GetTimestamp() : writeDone;
        // After a cancel, interrupted writes are its echo, not a failure of their own.
        if (error is OperationCanceledException && job.CancellationToken.IsCancellationRequested) error = null;
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
            WriteTime = Stopwatch.GetElapsedTime(start, writeEnd),
            TotalTime = Stopwatch.GetElapsedTime(start),
            FsyncTime = sink.FsyncTime,
            // Until the copy ended and the guest ran free again (a stop-copy resume follows the copy).
            ProtectedWindow = Max(Stopwatch.GetElapsedTime(start, writeEnd), downtime),
            FreezeMonotonicNs = SnapshotResult.MonotonicNs(start),
            Iterations = iterations,
            Converged = converged,
        });
    }
}
