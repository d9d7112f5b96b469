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
        var (saver, job) = ReferenceEngineSupport.CreateSaverAndJob(Name, memory, sink);
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
                ReferenceEngineSupport.ForEachChunk(memory, options.ScanChunkPages, saver.SaveRange, job.CancellationToken);
            }
            catch (Exception e) { error = e; }
            long writeDone = Stopwatch.GetTimestamp();
            long resumedAt = ReferenceEngineSupport.ResumeAndWait(source);
            ReferenceEngineSupport.Finish(job, sink, sections, error, start, writeDone,
                resumedAt == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(start, resumedAt), 0, true, log);
        })
        { Name = "snap-stopcopy", IsBackground = true };
        worker.Start();
        return job;
    }
}
