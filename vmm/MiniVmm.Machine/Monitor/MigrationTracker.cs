using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// The snapshot seen as a QEMU migration: `migrate`, `migrate_cancel`, the status machine (setup → active →
/// completed | failed | cancelling → cancelled), MIGRATION events and `query-migrate`. It follows every snapshot of
/// the shared controller, including those started by a signal, timer or the guest. Runs on the main loop.
/// </summary>
public sealed class MigrationTracker
{
    private const long PageSize = 4096;
    private readonly SnapshotController _controller;
    private readonly MigrationSettings _settings;
    private readonly Action<string, JsonObject?> _emit;
    private string? _status;
    private long _startedAt;
    private double _setupMs;
    private SnapshotJob? _job;
    private long _totalPages; // kept from the job: a result counts only the pages it saved
    private SnapshotResult? _result;
    private string? _error;

    public MigrationTracker(SnapshotController controller, MigrationSettings settings, Action<string, JsonObject?> emit)
    {
        _controller = controller;
        _settings = settings;
        _emit = emit;
        controller.Started += OnStarted;
        controller.Completed += OnCompleted;
    }

    public string? Status => _status;
    public bool IsActive => _status is "setup" or "active" or "cancelling";

    /// <summary>`migrate uri=`: exec:CMD, file:PATH or s3://BUCKET/KEY. Errors before the snapshot starts are the command's errors.</summary>
    public void Start(string uri)
    {
        if (IsActive || _controller.CurrentJob is not null) throw QmpException.Generic("There's a migration process in progress");
        bool s3 = uri.StartsWith("s3://", StringComparison.Ordinal);
        if (!s3 && !uri.StartsWith("exec:", StringComparison.Ordinal) && !uri.StartsWith("file:", StringComparison.Ordinal))
        {
            string scheme = uri.Contains(':') ? uri[..uri.IndexOf(':')] : uri;
            throw QmpException.Generic($"Unknown migration protocol: {scheme} (MiniVmm saves to exec:CMD, file:PATH or s3://BUCKET/KEY)");
        }
        if (s3)
        {
            try { MiniVmm.Snapshot.ObjectStore.ObjectUri.Parse(uri); }
            catch (ArgumentException e) { throw QmpException.Generic(e.Message); }
        }
        else if (uri.Length <= 5 || uri[5..].Trim().Length == 0) throw QmpException.Generic($"'{uri}' names no command or file");
        _job = null;
        _result = null;
        _error = null;
        _startedAt = Stopwatch.GetTimestamp();
        SetStatus("setup");
        if (!_controller.TryStart(uri, _settings.ToOptions(), out string? error, chain: _settings.Incremental))
        {
            _error = error ?? "the snapshot did not start";
            SetStatus("failed");
            throw QmpException.Generic(_error);
        }
    }

    /// <summary>`migrate_cancel`: like QEMU, succeeds even when nothing runs.</summary>
    public void Cancel()
    {
        if (_status == "active" && _controller.Cancel()) SetStatus("cancelling");
    }

    private void OnStarted(SnapshotJob job)
    {
        if (_status != "setup")
        {
            // Started by another trigger (SIGUSR1, the timer, the guest): report it all the same.
            _result = null;
            _error = null;
            _startedAt = Stopwatch.GetTimestamp();
        }
        _job = job;
        _totalPages = job.TotalPages;
        _setupMs = Stopwatch.GetElapsedTime(_startedAt).TotalMilliseconds;
        SetStatus("active");
    }

    private void OnCompleted(SnapshotResult result)
    {
        _result = result;
        _job = null;
        _error = result.Succeeded ? null : result.Error;
        SetStatus(result.Succeeded ? "completed" : result.Cancelled ? "cancelled" : "failed");
    }

    private void SetStatus(string status)
    {
        _status = status;
        if (_settings.Events) _emit("MIGRATION", new JsonObject { ["status"] = status });
    }

    /// <summary>`query-migrate`: {} before the first migration, as in QEMU.</summary>
    public JsonObject Query()
    {
        var info = new JsonObject();
        if (_status is null) return info;
        info["status"] = _status;
        if (_status == "setup") return info;
        info["setup-time"] = (long)_setupMs;
        if (_result is { } r)
        {
            info["total-time"] = (long)r.TotalTime.TotalMilliseconds;
            if (r.Succeeded) info["downtime"] = (long)r.Downtime.TotalMilliseconds;
            // Dirty-log re-sends pages, so what was written can exceed RAM; pages done cannot.
            long done = r.Succeeded ? _totalPages : Math.Min(_totalPages, r.PagesSaved + r.ZeroPages);
            info["ram"] = Ram(_totalPages, normal: r.PagesSaved, duplicate: r.ZeroPages, transferred: r.BytesWritten,
                remainingPages: r.Succeeded ? 0 : Math.Max(0, _totalPages - done), seconds: r.TotalTime.TotalSeconds);
            info["x-minivmm"] = Extra(r.Engine, _totalPages, done, r.FaultsServed, r.BytesWritten, r);
        }
        else if (_job is { } job)
        {
            double seconds = Stopwatch.GetElapsedTime(_startedAt).TotalSeconds;
            long done = job.PagesDone(), bytes = job.BytesWritten(), faults = job.FaultsServed();
            // The engines count saved pages, zero or not, while running; bytes written bound the non-zero ones.
            long normal = Math.Min(done, bytes / PageSize);
            info["total-time"] = (long)(seconds * 1000);
            info["ram"] = Ram(job.TotalPages, normal, done - normal, bytes, job.TotalPages - done, seconds);
            info["x-minivmm"] = Extra(job.Engine, job.TotalPages, done, faults, bytes, null);
        }
        if (_error is not null && _status == "failed") info["error-desc"] = _error;
        return info;
    }

    private static JsonObject Ram(long totalPages, long normal, long duplicate, long transferred, long remainingPages, double seconds) => new()
    {
        ["transferred"] = transferred,
        ["remaining"] = remainingPages * PageSize,
        ["total"] = totalPages * PageSize,
        ["duplicate"] = duplicate,
        ["skipped"] = 0,
        ["normal"] = normal,
        ["normal-bytes"] = normal * PageSize,
        ["dirty-sync-count"] = 1,
        ["page-size"] = PageSize,
        ["mbps"] = seconds > 0 ? Math.Round(transferred * 8 / 1e6 / seconds, 3) : 0,
        ["pages-per-second"] = seconds > 0 ? (long)((normal + duplicate) / seconds) : 0,
    };

    private static JsonObject Extra(string engine, long totalPages, long donePages, long faults, long bytes, SnapshotResult? r)
    {
        var extra = new JsonObject
        {
            ["engine"] = engine,
            ["pages-total"] = totalPages,
            ["pages-done"] = donePages,
            ["faults-served"] = faults,
            ["bytes-written"] = bytes,
        };
        if (r is not null)
        {
            extra["zero-pages"] = r.ZeroPages;
            extra["write-time-ms"] = Math.Round(r.WriteTime.TotalMilliseconds, 3);
            extra["fsync-time-ms"] = Math.Round(r.FsyncTime.TotalMilliseconds, 3);
            extra["downtime-us"] = (long)r.Downtime.TotalMicroseconds;
            extra["protected-window-ms"] = Math.Round(r.ProtectedWindow.TotalMilliseconds, 3);
            extra["fault-stall-p50-us"] = (long)r.FaultStallP50.TotalMicroseconds;
            extra["fault-stall-p99-us"] = (long)r.FaultStallP99.TotalMicroseconds;
            extra["fault-stall-max-us"] = (long)r.FaultStallMax.TotalMicroseconds;
            extra["fault-buffer-waits"] = r.FaultBufferWaits;
            if (r.DowntimeBreakdown is not null) extra["downtime-breakdown"] = r.DowntimeBreakdown;
            if (r.Iterations > 0) { extra["iterations"] = r.Iterations; extra["converged"] = r.Converged; }
            extra["incremental"] = r.Incremental;
            if (r.Incremental) extra["changed-pages"] = r.ChangedPages;
            if (r.HandoverPause > TimeSpan.Zero) extra["handover-pause-us"] = (long)r.HandoverPause.TotalMicroseconds;
            if (r.Succeeded && r.SnapshotId != Guid.Empty) extra["snapshot-id"] = r.SnapshotId.ToString();
        }
        return extra;
    }
}
