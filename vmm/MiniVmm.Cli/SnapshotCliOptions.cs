using System.CommandLine;
using System.Globalization;
using MiniVmm.Snapshot;

namespace MiniVmm.Cli;

/// <summary>The `--snapshot-*` options of `minivmm run` and their parsing.</summary>
internal sealed class SnapshotCliOptions
{
    public Option<string?> To { get; } = new("--snapshot-to")
    {
        Description = "take a live snapshot into FILE (%n: a counter, %t: the UTC time, e.g. 'vm-%n.mvs'), or stream it to exec:CMD (run by /bin/sh), or upload it to s3://BUCKET/KEY (store and keys: --s3-endpoint, --s3-profile, the AWS_* variables, ~/.aws/credentials and ~/.aws/config)",
    };
    public Option<bool> Overwrite { get; } = new("--snapshot-overwrite") { Description = "replace an existing snapshot file (default: refuse)" };
    public Option<string?> After { get; } = new("--snapshot-after") { Description = "when to snapshot: a duration such as 500ms, 2s, 1m (default: only on SIGUSR1 or a guest request)" };
    public Option<string> Mode { get; } = new("--snapshot-mode") { Description = "write-tracking | stop-copy | dirty-log", DefaultValueFactory = _ => "write-tracking" };
    public Option<double> RateLimit { get; } = new("--snapshot-rate-limit") { Description = "cap the background scan at this many MiB/s (0 = unlimited)" };
    public Option<int> FaultAround { get; } = new("--snapshot-fault-around") { Description = "pages saved per write fault (power of two, 1..512)", DefaultValueFactory = _ => 512 };
    public Option<string?> Buffer { get; } = new("--snapshot-buffer")
    {
        Description = "memory for write-fault copies waiting for the destination (e.g. 64M, 1G; plain numbers are MiB; default 16M): more lets a guest's writes wait in memory instead of on a slow destination",
        HelpName = "SIZE",
    };
    public Option<bool> RealtimeFaults { get; } = new("--snapshot-realtime-faults")
    {
        Description = "write-tracking: serve write faults from a real-time (SCHED_FIFO) thread, which cuts the longest fault stalls on a busy host (needs CAP_SYS_NICE)",
    };
    public Option<string?> ConvergeTimeout { get; } = new("--snapshot-converge-timeout") { Description = "dirty-log: stop iterating after this long (e.g. 5s) and stop-and-copy the rest (default: only the 30-iteration cap)" };
    public Option<string?> Timeout { get; } = new("--snapshot-timeout") { Description = "fail a snapshot whose destination takes no data for this long (default 10s; 0 = never)" };
    public Option<bool> ExitAfter { get; } = new("--exit-after-snapshot") { Description = "stop the VM once the snapshot is complete (exit 0 on success)" };

    public Option<bool> Incremental { get; } = new("--snapshot-incremental")
    {
        Description = "each snapshot after the first saves only the pages written since the previous one (an incremental link naming it; " +
                      "restore --memory eager: the first one already builds on the restored snapshot). Needs a file destination; use %n",
    };
    public Option<string?> IncrementalFrom { get; } = new("--incremental-from")
    {
        Description = "restore: like --snapshot-incremental, and check that BASE is the snapshot being restored (the first link's parent)",
        HelpName = "BASE",
    };

    public Option<string?> Stats { get; } = new("--snapshot-stats") { Description = "append each snapshot's statistics (incl. every fault stall) as a JSON line to FILE" };

    public IEnumerable<Option> All => [To, Overwrite, After, Mode, RateLimit, FaultAround, Buffer, RealtimeFaults, ConvergeTimeout, Timeout, ExitAfter, Incremental, IncrementalFrom, Stats];

    /// <summary>Every word <c>--snapshot-mode</c> accepts (aliases included): the parser and shell completion both read it.</summary>
    public static readonly IReadOnlyDictionary<string, SnapshotMode> ModeWords = new Dictionary<string, SnapshotMode>(StringComparer.Ordinal)
    {
        ["write-tracking"] = SnapshotMode.WriteTracking,
        ["wt"] = SnapshotMode.WriteTracking,
        ["stop-copy"] = SnapshotMode.StopAndCopy,
        ["stop-and-copy"] = SnapshotMode.StopAndCopy,
        ["dirty-log"] = SnapshotMode.DirtyLog,
        ["precopy"] = SnapshotMode.DirtyLog,
    };

    public static bool TryParseMode(string text, out SnapshotMode mode) => ModeWords.TryGetValue(text, out mode);

    /// <summary>Parses "250ms", "2s", "1.5s", "1m", or a plain number of seconds.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        string s = text.Trim();
        double scale = 1;
        if (s.EndsWith("ms", StringComparison.Ordinal)) { scale = 0.001; s = s[..^2]; }
        else if (s.EndsWith('s')) s = s[..^1];
        else if (s.EndsWith('m')) { scale = 60; s = s[..^1]; }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || v < 0 || double.IsInfinity(v)) return false;
        duration = TimeSpan.FromSeconds(v * scale);
        return true;
    }
}
