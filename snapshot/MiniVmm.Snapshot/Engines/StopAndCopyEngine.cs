using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Engines;

/// <summary>Pause, copy every page, resume: trivially consistent, downtime proportional to RAM. The reference engine.</summary>
public sealed class StopAndCopyEngine : ISnapshotEngine
{
    public string Name => "stop-copy";

    public SnapshotJob Start(ISnapshotSource source, ISnapshotSink sink, SnapshotOptions options, ILogger log)
    {
        options.Validate();
        var memory = source.Memory;
        var saver = new PageSaver(memory, sink, PageSaver.CreateStates(memory));
        var job = new SnapshotJob(Name, memory.Regions.Sum(r => r.PageCount))
        {
            PagesDone = () => saver.States.Sum(s => s.SavedCount),
            BytesWritten = () => sink.BytesWritten,
        };
        source.PrepareMemory();
        long start = Stopwatch.GetTimestamp();
        source.Pause();
        IReadOnlyList<StateSection> sections;
        try { sections = source.CaptureState(); }
        catch
        {
            source.Resume();
            throw;
        }

        var worker = new Thread(() =>
        {
            Exception? error = null;
            try
            {
                for (int ri = 0; ri < memory.Regions.Count; ri++)
                    for (long first = 0; first < memory.Regions[ri].PageCount && !job.CancellationToken.IsCancellationRequested; first += options.ScanChunkPages)
                        saver.SaveRange(ri, first, Math.Min(options.ScanChunkPages, memory.Regions[ri].PageCount - first));
            }
            catch (Exception e) { error = e; }
            long writeDone = Stopwatch.GetTimestamp();
            long resumedAt = 0;
            using var resumed = new ManualResetEventSlim();
            source.ScheduleResume(() => { resumedAt = Stopwatch.GetTimestamp(); resumed.Set(); });
            resumed.Wait(TimeSpan.FromSeconds(10));
            CopyRunCompletion.Finish(job, sink, sections, error, start, writeDone,
                resumedAt == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(start, resumedAt), 0, true, log);
        }) { Name = "snap-stopcopy", IsBackground = true };
        worker.Start();
        return job;
    }
}
