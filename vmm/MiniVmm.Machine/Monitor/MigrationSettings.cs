using System.Text.Json.Nodes;
using MiniVmm.Snapshot;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// The migration capabilities and parameters a QMP client sets before `migrate`, mapped onto snapshot options.
/// `background-snapshot` picks the engine as in QEMU: on = write tracking, off = dirty-log pre-copy. MiniVmm adds
/// `x-minivmm-engine` (auto | write-tracking | stop-copy | dirty-log; auto follows background-snapshot) because QEMU
/// has no stop-and-copy mode to name, and `x-minivmm-fault-around` (pages saved per write fault).
/// </summary>
public sealed class MigrationSettings
{
    /// <summary>Capability names accepted for background-snapshot: early versions of QEMU's series used the others.</summary>
    private static readonly string[] BackgroundSnapshotNames = ["background-snapshot", "track-writes-ram", "x-track-writes-ram"];

    /// <summary>QEMU 7.2 capabilities MiniVmm knows but does not implement: they may be set off, never on.</summary>
    private static readonly string[] UnsupportedCapabilities =
    [
        "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "postcopy-ram", "x-colo", "release-ram",
        "block", "return-path", "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
        "late-block-activate", "x-ignore-shared", "validate-uuid", "zero-copy-send", "postcopy-preempt",
    ];

    public static readonly string[] EngineNames = ["auto", "write-tracking", "stop-copy", "dirty-log"];

    public bool BackgroundSnapshot { get; private set; }
    /// <summary>MiniVmm's `x-minivmm-incremental`: each `migrate` after the first is an incremental link of the previous one.</summary>
    public bool Incremental { get; private set; }
    public const string IncrementalCapability = "x-minivmm-incremental";
    /// <summary>QEMU's `events` capability: MIGRATION events are sent only when it is on.</summary>
    public bool Events { get; private set; }
    /// <summary>Scan rate limit in bytes/s; 0 = unlimited (MiniVmm's default, where QEMU's is 32 MiB/s).</summary>
    public long MaxBandwidth { get; private set; }
    /// <summary>Stored and reported for scripts that set it; the engines have no downtime target.</summary>
    public long DowntimeLimitMs { get; private set; } = 300;
    public string Engine { get; private set; } = "auto";
    public int FaultAroundPages { get; private set; } = new SnapshotOptions().FaultAroundPages;
    /// <summary>`x-minivmm-stall-timeout` (ms): a destination that takes no data this long fails the snapshot; 0 = never.</summary>
    public long StallTimeoutMs { get; private set; } = (long)new SnapshotOptions().StallTimeout.TotalMilliseconds;

    public SnapshotOptions ToOptions() => new()
    {
        Mode = Engine switch
        {
            "write-tracking" => SnapshotMode.WriteTracking,
            "stop-copy" => SnapshotMode.StopAndCopy,
            "dirty-log" => SnapshotMode.DirtyLog,
            _ => BackgroundSnapshot ? SnapshotMode.WriteTracking : SnapshotMode.DirtyLog,
        },
        RateLimitBytesPerSecond = MaxBandwidth,
        FaultAroundPages = FaultAroundPages,
        StallTimeout = StallTimeoutMs == 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(StallTimeoutMs),
    };

    /// <summary>`migrate-set-capabilities`: all entries are checked before any is applied, as in QEMU.</summary>
    public void SetCapabilities(JsonArray list)
    {
        var changes = new List<(string Name, bool State)>();
        for (int i = 0; i < list.Count; i++)
        {
            string at = $"capabilities[{i}]";
            QmpArguments.CheckType(at, list[i], QmpType.Object);
            var entry = QmpArguments.Check(list[i]!.AsObject(),
                [new("capability", QmpType.String, Required: true), new("state", QmpType.Bool, Required: true)], at + ".");
            string name = entry.String("capability")!;
            bool state = entry.Bool("state")!.Value;
            if (BackgroundSnapshotNames.Contains(name)) name = "background-snapshot";
            else if (name != "events" && name != IncrementalCapability)
            {
                if (!UnsupportedCapabilities.Contains(name))
                    throw QmpException.Generic($"Parameter '{at}.capability' does not accept value '{name}'");
                if (state) throw QmpException.Generic($"MiniVmm does not support migration capability '{name}'");
            }
            changes.Add((name, state));
        }
        foreach (var (name, state) in changes)
        {
            if (name == "background-snapshot") BackgroundSnapshot = state;
            else if (name == "events") Events = state;
            else if (name == IncrementalCapability) Incremental = state;
        }
    }

    public JsonArray QueryCapabilities()
    {
        var list = new JsonArray
        {
            (JsonNode)new JsonObject { ["capability"] = "events", ["state"] = Events },
            (JsonNode)new JsonObject { ["capability"] = "background-snapshot", ["state"] = BackgroundSnapshot },
            (JsonNode)new JsonObject { ["capability"] = IncrementalCapability, ["state"] = Incremental },
        };
        foreach (string name in UnsupportedCapabilities) list.Add((JsonNode)new JsonObject { ["capability"] = name, ["state"] = false });
        return list;
    }

    public static IReadOnlyList<QmpParameter> ParameterSchema { get; } =
    [
        new("max-bandwidth", QmpType.Int),
        new("downtime-limit", QmpType.Int),
        new("x-minivmm-engine", QmpType.String),
        new("x-minivmm-fault-around", QmpType.Int),
        new("x-minivmm-stall-timeout", QmpType.Int),
    ];

    /// <summary>`migrate-set-parameters`: validates every value, then applies them together.</summary>
    public void SetParameters(QmpArguments args)
    {
        long bandwidth = args.Int("max-bandwidth") ?? MaxBandwidth;
        if (bandwidth < 0) throw QmpException.Generic("Parameter 'max-bandwidth' expects a non-negative number of bytes per second");
        long downtime = args.Int("downtime-limit") ?? DowntimeLimitMs;
        if (downtime < 0 || downtime > 2_000_000) throw QmpException.Generic("Parameter 'downtime-limit' expects an integer in the range of 0 to 2000000 milliseconds");
        string engine = args.String("x-minivmm-engine") ?? Engine;
        if (!EngineNames.Contains(engine))
            throw QmpException.Generic($"Parameter 'x-minivmm-engine' expects one of {string.Join(", ", EngineNames)}");
        long faultAround = args.Int("x-minivmm-fault-around") ?? FaultAroundPages;
        if (faultAround < 1 || faultAround > 512 || (faultAround & (faultAround - 1)) != 0)
            throw QmpException.Generic("Parameter 'x-minivmm-fault-around' expects a power of two from 1 to 512 (pages)");
        long stall = args.Int("x-minivmm-stall-timeout") ?? StallTimeoutMs;
        if (stall < 0 || stall > 86_400_000)
            throw QmpException.Generic("Parameter 'x-minivmm-stall-timeout' expects milliseconds from 0 (never) to 86400000");
        MaxBandwidth = bandwidth;
        DowntimeLimitMs = downtime;
        StallTimeoutMs = stall;
        Engine = engine;
        FaultAroundPages = (int)faultAround;
    }

    public JsonObject QueryParameters() => new()
    {
        ["max-bandwidth"] = MaxBandwidth,
        ["downtime-limit"] = DowntimeLimitMs,
        ["x-minivmm-engine"] = Engine,
        ["x-minivmm-fault-around"] = FaultAroundPages,
        ["x-minivmm-stall-timeout"] = StallTimeoutMs,
    };
}
