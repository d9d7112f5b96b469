using MiniVmm.Snapshot;

namespace MiniVmm.Cli;

/// <summary>
/// `--snapshot-stats FILE`: the outcome of each snapshot as one JSON object per line (appended), with every fault-stall
/// sample, for experiments that plot distributions. Keys as in JsonOutput (kebab-case).
/// </summary>
internal static class SnapshotStatsFile
{
    public static void Append(string path, SnapshotResult r)
    {
        try { File.AppendAllText(path, JsonOutput.Stats(r) + "\n"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"minivmm: cannot write snapshot statistics to '{path}': {e.Message}");
        }
    }
}
