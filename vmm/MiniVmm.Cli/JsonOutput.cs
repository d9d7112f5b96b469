using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Cli;

/// <summary>
/// The machine-readable outputs (`snapshot inspect --json`, `snapshot verify --json`, `snapshot --qmp --json`,
/// `--snapshot-stats`): one JSON object each, keys in kebab-case as QMP's, sizes in bytes, times in milliseconds
/// (`-ms`) or microseconds (`-us`) as the key says. Written with Utf8JsonWriter/JsonNode (no reflection: NativeAOT-safe).
/// </summary>
internal static class JsonOutput
{
    public static string Inspect(SnapshotFile file, SnapshotChain? chain = null, string? chainError = null,
        IReadOnlyList<MiniVmm.Machine.Snapshots.SnapshotDriveInfo>? drives = null)
    {
        var info = file.Info;
        long presentPages = Enumerable.Range(0, file.RegionCount).Sum(file.PresentPages);
        long memory = info.Regions.Sum(r => (long)r.Size);
        var regions = new JsonArray();
        for (int g = 0; g < info.Regions.Count; g++)
        {
            var r = info.Regions[g];
            regions.Add((JsonNode)new JsonObject
            {
                ["index"] = g,
                ["guest-address"] = r.GuestAddress,
                ["size"] = r.Size,
                ["pages"] = r.PageCount,
                ["pages-present"] = file.PresentPages(g),
                ["file-offset"] = file.RegionDataOffset(g),
            });
        }
        var sections = new JsonArray();
        foreach (var s in file.Sections)
            sections.Add((JsonNode)new JsonObject { ["id"] = s.Id, ["version"] = s.Version, ["size"] = s.Data.Length });
        var o = new JsonObject
        {
            ["path"] = file.Path,
            ["format-version"] = file.FormatVersion,
            ["complete"] = true,
            ["engine"] = info.Engine,
            ["created"] = file.CreatedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture),
            ["host-cpu"] = info.HostCpuModel,
            ["file-size"] = file.FileLength,
            ["page-data-size"] = presentPages * SnapshotFormat.PageSize,
            ["memory-size"] = memory,
            ["pages-present"] = presentPages,
            ["pages-zero"] = file.IsIncremental ? 0 : memory / SnapshotFormat.PageSize - presentPages,
            ["pages-from-parent"] = file.IsIncremental ? memory / SnapshotFormat.PageSize - presentPages : 0,
            ["snapshot-id"] = file.SnapshotId.ToString(),
            ["trailer-checksum"] = file.TrailerChecksum.ToString("x16", System.Globalization.CultureInfo.InvariantCulture),
            ["parent"] = file.Parent is { } parent
                ? new JsonObject
                {
                    ["snapshot-id"] = parent.SnapshotId.ToString(),
                    ["trailer-checksum"] = parent.TrailerChecksum.ToString("x16", System.Globalization.CultureInfo.InvariantCulture),
                }
                : null,
            ["regions"] = regions,
            ["state-size"] = file.StateLength,
            ["state-sections"] = sections,
            ["trailer-size"] = file.TrailerLength,
            ["vm-config"] = VmConfig(info.VmConfig),
        };
        if (chain is not null)
        {
            var links = new JsonArray();
            foreach (var l in chain.Links)
                links.Add((JsonNode)new JsonObject
                {
                    ["path"] = l.Path,
                    ["snapshot-id"] = l.SnapshotId.ToString(),
                    ["incremental"] = l.IsIncremental,
                    ["pages-stored"] = Enumerable.Range(0, l.RegionCount).Sum(l.PresentPages),
                });
            o["chain"] = links;
        }
        if (chainError is not null) o["chain-error"] = chainError;
        if (drives is not null)
        {
            var list = new JsonArray();
            foreach (var d in drives)
                list.Add((JsonNode)new JsonObject
                {
                    ["slot"] = d.Slot,
                    ["path"] = d.Path,
                    ["read-only"] = d.ReadOnly,
                    ["cache"] = d.Cache,
                    ["captured"] = d.Captured is { } r
                        ? new JsonObject
                        {
                            ["file"] = r.File,
                            ["copy-path"] = d.CopyPath,
                            ["copy-present"] = d.CopyPresent,
                            ["length"] = r.Length,
                            ["bytes-stored"] = r.BytesStored,
                            ["block-size"] = r.BlockSize,
                            ["checksum"] = r.Checksum.ToString("x16", System.Globalization.CultureInfo.InvariantCulture),
                            ["incremental"] = r.IsLink,
                            ["pages"] = r.PageCount,
                            ["pages-stored"] = r.PagesHeld,
                        }
                        : null,
                });
            o["drives"] = list;
        }
        return o.ToJsonString();
    }

    public static string Verify(string path, VerifyResult r) => new JsonObject
    {
        ["path"] = path,
        ["valid"] = r.IsValid,
        ["pages-checked"] = r.PresentPagesChecked,
        ["zero-pages-confirmed"] = r.AbsentPagesChecked,
        ["bytes-read"] = r.BytesRead,
        ["error-count"] = r.ErrorCount,
        ["errors"] = new JsonArray(r.Errors.Select(e => (JsonNode)JsonValue.Create(e)!).ToArray()),
    }.ToJsonString();

    /// <summary>`--snapshot-stats`: one line per snapshot, with every fault-stall sample.</summary>
    public static string Stats(SnapshotResult r)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("engine", r.Engine);
            w.WriteBoolean("succeeded", r.Succeeded);
            w.WriteBoolean("cancelled", r.Cancelled);
            if (r.Error is not null) w.WriteString("error", r.Error);
            w.WriteNumber("pages-saved", r.PagesSaved);
            w.WriteNumber("zero-pages", r.ZeroPages);
            w.WriteNumber("zero-pages-unread", r.ZeroPagesUnread);
            w.WriteNumber("bytes-written", r.BytesWritten);
            w.WriteNumber("faults-served", r.FaultsServed);
            w.WriteNumber("downtime-ms", r.Downtime.TotalMilliseconds);
            w.WriteNumber("protected-window-ms", r.ProtectedWindow.TotalMilliseconds);
            w.WriteNumber("freeze-monotonic-ns", r.FreezeMonotonicNs);
            w.WriteNumber("write-ms", r.WriteTime.TotalMilliseconds);
            w.WriteNumber("total-ms", r.TotalTime.TotalMilliseconds);
            w.WriteNumber("fsync-ms", r.FsyncTime.TotalMilliseconds);
            w.WriteNumber("iterations", r.Iterations);
            w.WriteBoolean("converged", r.Converged);
            w.WriteBoolean("incremental", r.Incremental);
            w.WriteNumber("changed-pages", r.ChangedPages);
            w.WriteNumber("handover-pause-ms", r.HandoverPause.TotalMilliseconds);
            w.WriteNumber("drive-bytes", r.DriveBytes);
            if (r.DriveLinkPages is { } drivePages) w.WriteNumber("drive-changed-pages", drivePages);
            if (r.DowntimeBreakdown is not null) w.WriteString("downtime-breakdown", r.DowntimeBreakdown);
            w.WriteNumber("fault-stall-p50-us", Math.Round(r.FaultStallP50.TotalMicroseconds, 1));
            w.WriteNumber("fault-stall-p99-us", Math.Round(r.FaultStallP99.TotalMicroseconds, 1));
            w.WriteNumber("fault-stall-max-us", Math.Round(r.FaultStallMax.TotalMicroseconds, 1));
            w.WriteNumber("fault-buffer-waits", r.FaultBufferWaits);
            w.WriteNumber("fault-buffer-wait-ms", Math.Round(r.FaultBufferWaitTime.TotalMilliseconds, 3));
            w.WriteBoolean("fault-thread-realtime", r.RealtimeFaultThread);
            if (r.SlowFaultPhases is { } slow)
            {
                w.WriteStartObject("slowest-fault-phases-us");
                w.WriteNumber("copy", Math.Round(slow.Copy.TotalMicroseconds, 1));
                w.WriteNumber("claim-wait", Math.Round(slow.ClaimWait.TotalMicroseconds, 1));
                w.WriteNumber("unprotect", Math.Round(slow.Unprotect.TotalMicroseconds, 1));
                w.WriteEndObject();
            }
            w.WriteStartArray("fault-stall-us");
            foreach (double us in r.FaultStallSamplesUs) w.WriteNumberValue(Math.Round(us, 1));
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The header's VM configuration with kebab-case keys (version 1 files wrote MemoryBytes: memory-bytes).</summary>
    private static JsonNode? VmConfig(string json)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException) { return json; }
        return Rename(node);
    }

    private static JsonNode? Rename(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.Select(p => KeyValuePair.Create(Kebab(p.Key), Rename(p.Value?.DeepClone())))),
        JsonArray a => new JsonArray(a.Select(e => Rename(e?.DeepClone())).ToArray()),
        _ => node?.DeepClone(),
    };

    /// <summary>kebab-case of a version 1 (PascalCase) key; a version 2 key is already kebab-case and stays as it is.</summary>
    internal static string Kebab(string name) => JsonNamingPolicy.KebabCaseLower.ConvertName(name);
}
