using System.Text.Json;
using MiniVmm.Snapshot;

namespace MiniVmm.Cli;

/// <summary>
/// `--snapshot-stats FILE`: the outcome of each snapshot as one JSON object per line (appended), with every fault-stall
/// sample, for experiments that plot distributions. Written with Utf8JsonWriter (no reflection: NativeAOT-safe).
/// </summary>
internal static class SnapshotStatsFile
{
    public static void Append(string path, SnapshotResult r)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("engine", r.Engine);
            w.WriteBoolean("succeeded", r.Succeeded);
            if (r.Error is not null) w.WriteString("error", r.Error);
            w.WriteNumber("pages_saved", r.PagesSaved);
            w.WriteNumber("zero_pages", r.ZeroPages);
            w.WriteNumber("bytes_written", r.BytesWritten);
            w.WriteNumber("faults_served", r.FaultsServed);
            w.WriteNumber("downtime_ms", r.Downtime.TotalMilliseconds);
            w.WriteNumber("write_ms", r.WriteTime.TotalMilliseconds);
            w.WriteNumber("total_ms", r.TotalTime.TotalMilliseconds);
            w.WriteNumber("fsync_ms", r.FsyncTime.TotalMilliseconds);
            w.WriteNumber("iterations", r.Iterations);
            w.WriteBoolean("converged", r.Converged);
            w.WriteStartArray("fault_stall_us");
            foreach (double us in r.FaultStallSamplesUs) w.WriteNumberValue(Math.Round(us, 1));
            w.WriteEndArray();
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        try { File.AppendAllText(path, System.Text.Encoding.UTF8.GetString(buffer.ToArray())); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"minivmm: cannot write snapshot statistics to '{path}': {e.Message}");
        }
    }
}
