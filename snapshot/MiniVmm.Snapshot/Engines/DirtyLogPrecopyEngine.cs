using System.Diagnostics;
using System.Numerics;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// Classic pre-copy with KVM's dirty log: copy all RAM while the guest runs, then re-send what it dirtied, iterating
/// until the dirty set is small (or a cap is hit), then pause and copy the rest. The comparison point for write
/// tracking: under write load its output grows (stream form) and it may not converge.
/// KVM's log sees vCPU writes only; device writes into guest RAM come from the VMM's host-write log, which
/// <see cref="ISnapshotSource.GetAndClearDirtyLog"/> merges in.
/// </summary>
public sealed class DirtyLogPrecopyEngine : ISnapshotEngine
{
    public string Name => "dirty-log";

    public SnapshotJob Start(ISnapshotSource source, ISnapshotSink sink, SnapshotOptions options, ILogger log)
    {
        options.Validate();
        var memory = source.Memory;
        var (saver, job) = ReferenceEngineSupport.CreateSaverAndJob(Name, memory, sink);
        source.PrepareMemory();
        try { source.SetDirtyLogging(true); }
        catch (Exception e) { throw new SnapshotException("cannot enable KVM dirty logging: " + e.Message, e); }
        var worker = new Thread(() => Run(source, sink, options, log, memory, saver, job)) { Name = "snap-dirtylog", IsBackground = true };
        worker.Start();
        return job;
    }

    private static bool TimedOut(SnapshotOptions options, long start) =>
        options.DirtyLogConvergeTimeout is { } limit && Stopwatch.GetElapsedTime(start) >= limit;

    private static void Run(ISnapshotSource source, ISnapshotSink sink, SnapshotOptions options, ILogger log,
        GuestMemory memory, PageSaver saver, SnapshotJob job)
    {
        long start = Stopwatch.GetTimestamp();
        var bitmaps = memory.Regions.Select(r => new ulong[(r.PageCount + 63) / 64]).ToArray();
        Exception? error = null;
        IReadOnlyList<StateSection>? sections = null;
        int iterations = 0;
        bool converged = false;
        TimeSpan downtime = TimeSpan.Zero;
        long writeDone = 0;
        var cancel = job.CancellationToken;
        var throttle = new ScanThrottle(options.RateLimitBytesPerSecond); // the running phase only: the final copy is paused
        try
        {
            // Iteration 0: everything. The log was cleared when logging started, so it now collects writes made during it.
            ReferenceEngineSupport.ForEachChunk(memory, options.ScanChunkPages, (ri, first, count) =>
            {
                saver.WriteRun(ri, first, count);
                throttle.WaitFor(sink.BytesWritten, cancel);
            }, cancel);
            iterations = 1;
            while (!cancel.IsCancellationRequested)
            {
                long dirty = FetchDirty(source, bitmaps);
                log.LogInformation("dirty-log iteration {Iteration}: {Dirty} pages dirty", iterations, dirty);
                if (dirty <= options.DirtyLogStopPages) { converged = true; SendDirty(saver, bitmaps, cancel); break; }
                if (iterations >= options.DirtyLogMaxIterations || TimedOut(options, start)) { SendDirty(saver, bitmaps, cancel); break; }
                SendDirty(saver, bitmaps, cancel);
                throttle.WaitFor(sink.BytesWritten, cancel);
                iterations++;
            }
            if (!cancel.IsCancellationRequested)
            {
                long pauseAt = Stopwatch.GetTimestamp();
                source.Pause();
                try
                {
                    FetchDirty(source, bitmaps);
                    SendDirty(saver, bitmaps, cancel);
                    sections = source.CaptureState();
                    iterations++;
                }
                finally
                {
                    writeDone = Stopwatch.GetTimestamp();
                    long resumedAt = ReferenceEngineSupport.ResumeAndWait(source);
                    downtime = Stopwatch.GetElapsedTime(pauseAt, resumedAt == 0 ? Stopwatch.GetTimestamp() : resumedAt);
                }
            }
        }
        catch (Exception e) { error = e; }
        finally
        {
            try { source.SetDirtyLogging(false); } catch (Exception e) { log.LogWarning(e, "could not disable dirty logging"); }
        }
        ReferenceEngineSupport.Finish(job, sink, sections, error, start, writeDone, downtime, iterations, converged, log);
    }

    private static long FetchDirty(ISnapshotSource source, ulong[][] bitmaps)
    {
        long dirty = 0;
        for (int ri = 0; ri < bitmaps.Length; ri++)
        {
            source.GetAndClearDirtyLog(ri, bitmaps[ri]);
            foreach (ulong word in bitmaps[ri]) dirty += BitOperations.PopCount(word);
        }
        return dirty;
    }

    private static void SendDirty(PageSaver saver, ulong[][] bitmaps, CancellationToken cancel)
    {
        for (int ri = 0; ri < bitmaps.Length; ri++)
        {
            var bits = bitmaps[ri];
            for (int w = 0; w < bits.Length && !cancel.IsCancellationRequested; w++)
            {
                ulong word = bits[w];
                while (word != 0)
                {
                    int bit = BitOperations.TrailingZeroCount(word);
                    // Send runs of consecutive dirty pages together.
                    int run = BitOperations.TrailingZeroCount(~(word >> bit));
                    if (run == 0) run = 64 - bit;
                    saver.WriteRun(ri, (long)w * 64 + bit, run);
                    word &= run + bit >= 64 ? 0 : ~0UL << (bit + run);
                }
            }
        }
    }
}
