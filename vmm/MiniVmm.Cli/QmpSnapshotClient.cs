using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using MiniVmm.Machine.Snapshots;

using MiniVmm.Qmp;

namespace MiniVmm.Cli;

/// <summary>
/// `minivmm snapshot --qmp PATH --to FILE|exec:CMD [--mode ...]`: asks a running VM (MiniVmm, or QEMU for the
/// standard modes) for a snapshot through its QMP monitor, shows progress, and exits with the outcome:
/// 0 completed, 1 failed or cancelled, 120 bad options or no monitor at PATH. Ctrl-C cancels the snapshot.
/// </summary>
internal static class QmpSnapshotClient
{
    private const int ExitFailed = 1;

    public static void AddTo(Command snapshot)
    {
        var qmp = new Option<string?>("--qmp") { Description = "QMP socket of the running VM (unix:PATH or PATH)" };
        var to = new Option<string?>("--to") { Description = "snapshot FILE, file:PATH or exec:CMD (CMD runs in the VM's directory)" };
        var mode = new Option<string>("--mode") { Description = "write-tracking | stop-copy | dirty-log", DefaultValueFactory = _ => "write-tracking" };
        var bandwidth = new Option<double>("--max-bandwidth") { Description = "cap the scan at this many MiB/s (0 = unlimited)" };
        var json = SnapshotCommand.JsonOption();
        foreach (var o in new Option[] { qmp, to, mode, bandwidth, json }) snapshot.Options.Add(o);
        snapshot.SetAction(parse =>
        {
            string? path = parse.GetValue(qmp), dest = parse.GetValue(to);
            if (path is null || dest is null)
                return CommonOptions.Usage(parse, "snapshot: give --qmp PATH and --to FILE|exec:CMD to snapshot a running VM, or use inspect, verify or convert");
            if (!SnapshotCliOptions.TryParseMode(parse.GetValue(mode)!, out _))
                return CommonOptions.Usage(parse, $"--mode: '{parse.GetValue(mode)}' is not write-tracking, stop-copy or dirty-log");
            double mib = parse.GetValue(bandwidth);
            if (mib < 0 || double.IsNaN(mib)) return CommonOptions.Usage(parse, "--max-bandwidth must be 0 or more MiB/s");
            return Run(path, dest, parse.GetValue(mode)!, (long)(mib * (1 << 20)), parse.GetValue(json));
        });
    }

    private static int Run(string qmpSpec, string destination, string mode, long bytesPerSecond, bool json)
    {
        if (!QmpClient.TryOpen(qmpSpec, out var client, out _, out string? error)) return CommonOptions.Fail(error);
        using (client)
        {
            try
            {
                string uri = Uri(destination, client.IsMiniVmm);
                Configure(client, mode, bytesPerSecond);
                return Follow(client, uri, json);
            }
            catch (QmpCommandException e)
            {
                Console.Error.WriteLine($"minivmm: snapshot: {e.Message}");
                return ExitFailed;
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"minivmm: snapshot: lost the monitor: {e.Message}");
                return ExitFailed;
            }
        }
    }

    /// <summary>A file goes as file:ABSOLUTE (the VM has its own directory); QEMU 7.2 has no file: so it gets exec:cat.</summary>
    private static string Uri(string destination, bool miniVmm)
    {
        if (SnapshotDestination.FilePathOf(destination) is not { } path) return destination;
        return miniVmm ? "file:" + path : $"exec:cat > '{path.Replace("'", "'\\''", StringComparison.Ordinal)}'";
    }

    private static void Configure(QmpClient client, string mode, long bytesPerSecond)
    {
        if (!SnapshotCliOptions.TryParseMode(mode, out var parsed))
            throw new ArgumentException($"internal error: --mode '{mode}' was validated at parse time", nameof(mode));
        bool writeTracking = parsed == MiniVmm.Snapshot.SnapshotMode.WriteTracking;
        if (parsed == MiniVmm.Snapshot.SnapshotMode.StopAndCopy && !client.IsMiniVmm)
            throw new QmpCommandException("GenericError", "--mode stop-copy needs a MiniVmm monitor (x-minivmm-engine)");
        client.Execute("migrate-set-capabilities", new JsonObject
        {
            ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "background-snapshot", ["state"] = writeTracking }),
        });
        var parameters = new JsonObject();
        if (client.IsMiniVmm) parameters["x-minivmm-engine"] = parsed == MiniVmm.Snapshot.SnapshotMode.StopAndCopy ? "stop-copy" : "auto";
        // QEMU has its own default cap (7.2 reports 128 MiB/s); MiniVmm's 0 means unlimited. An explicit --max-bandwidth applies to both.
        if (bytesPerSecond > 0 || client.IsMiniVmm) parameters["max-bandwidth"] = bytesPerSecond;
        if (parameters.Count > 0) client.Execute("migrate-set-parameters", parameters);
    }

    private static int Follow(QmpClient client, string uri, bool json)
    {
        var progress = new QmpProgress(Console.Error, terminal: !Console.IsErrorRedirected);
        int cancelRequested = 0;
        using var sigint = HostSignals.Handle(_ => Interlocked.Exchange(ref cancelRequested, 1));
        var clock = Stopwatch.StartNew();
        client.Execute("migrate", new JsonObject { ["uri"] = uri });
        bool cancelSent = false;
        while (true)
        {
            var info = client.Execute("query-migrate")?.AsObject() ?? new JsonObject();
            string status = info["status"]?.GetValue<string>() ?? "none";
            if (status is "completed" or "failed" or "cancelled" or "none")
            {
                progress.Finish();
                return json ? ReportJson(info, status, clock.Elapsed) : Report(info, status, clock.Elapsed);
            }
            if (Volatile.Read(ref cancelRequested) == 1 && !cancelSent)
            {
                client.Execute("migrate_cancel");
                cancelSent = true;
            }
            progress.Update(info, clock.Elapsed.TotalSeconds);
            Thread.Sleep(100);
        }
    }

    /// <summary>`--json`: the outcome as one object on stdout (see docs/OUTPUT.md), whatever it was.</summary>
    private static int ReportJson(JsonObject info, string status, TimeSpan wall)
    {
        var s = QmpProgress.Read(info);
        var o = new JsonObject { ["status"] = status };
        if (info["error-desc"] is { } e) o["error"] = e.DeepClone();
        if (info["x-minivmm"]?["engine"] is { } engine) o["engine"] = engine.DeepClone();
        o["pages-saved"] = s.PagesSaved;
        o["pages-total"] = s.PagesTotal;
        o["bytes-written"] = s.Bytes;
        if (s.Faults is { } f) o["faults-served"] = f;
        if (s.DowntimeMs is { } d) o["downtime-ms"] = d;
        if (info["total-time"] is { } t) o["total-time-ms"] = t.DeepClone();
        o["wall-time-ms"] = Math.Round(wall.TotalMilliseconds, 1);
        Console.WriteLine(o.ToJsonString());
        return status == "completed" ? ExitCodes.Ok : ExitFailed;
    }

    private static int Report(JsonObject info, string status, TimeSpan wall)
    {
        var s = QmpProgress.Read(info);
        if (status != "completed")
        {
            Console.Error.WriteLine($"minivmm: snapshot {status}{(info["error-desc"] is { } e ? ": " + e : "")}");
            return ExitFailed;
        }
        // Saved (non-zero) pages and the exact downtime (x-minivmm's downtime-us where the VM has it; QEMU's downtime
        // field is whole milliseconds), in the same MiB/ms units as the VM's own summary line.
        string downtime = s.DowntimeMs is { } d ? string.Create(CultureInfo.InvariantCulture, $", downtime {d:0.###} ms") : "";
        string total = info["total-time"] is { } t ? $", total {t} ms" : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"snapshot completed: {s.PagesSaved} pages saved of {s.PagesTotal} ({s.Bytes / (double)(1 << 20):F1} MiB){downtime}{total} (wall {wall.TotalMilliseconds:F0} ms)"));
        return ExitCodes.Ok;
    }
}
