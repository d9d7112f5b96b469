using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

using MiniVmm.Qmp;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// `human-monitor-command`: the HMP lines research scripts send (migrate_set_capability, migrate, info migrate, info
/// status, stop, cont, ...), each translated into the QMP command it stands for and its reply formatted as text the
/// way QEMU's HMP prints it. As in QEMU, a failing command is not a QMP error: its output is "Error: ...".
/// </summary>
public sealed class HmpCommands(QmpCommands qmp)
{
    private readonly HmpInspect _inspect = new(qmp.Vm, qmp.RunState);

    private const string Help = """
        cont|c -- resume the VM
        help|? -- this list
        info cpus|migrate|migrate_capabilities|migrate_parameters|registers [-a]|status|version
        x /fmt addr -- guest memory at a virtual address (vCPU 0's page tables); fmt /[count][x|d|u|o|c][b|h|w|g]
        xp /fmt addr -- guest memory at a physical address
        migrate [-d] uri -- snapshot to exec:CMD, file:PATH or s3://BUCKET/KEY (always detached)
        migrate_cancel -- cancel the snapshot in progress
        migrate_set_capability capability state -- e.g. background-snapshot on (alias track-writes-ram)
        migrate_set_parameter parameter value -- max-bandwidth (MiB/s unless a B/K/M/G suffix), downtime-limit, x-minivmm-engine, x-minivmm-fault-around
        quit|q -- stop the VM and exit
        stop -- pause the VM
        system_reset -- MiniVmm does not reboot: stops the VM with the reset status

        """;

    /// <param name="cpu">The vCPU that `x` translates virtual addresses with (QMP's cpu-index; bounds-checked there).</param>
    public string Execute(string line, int cpu = 0)
    {
        if (!HmpTokenizer.TryTokenize(line, out var words, out string? syntax)) return $"Error: {syntax}\n";
        if (words.Count == 0) return "";
        try
        {
            return Run(words[0], words.Skip(1).ToList(), cpu);
        }
        catch (QmpException e)
        {
            return $"Error: {e.Message}\n";
        }
    }

    private string Run(string name, List<string> args, int cpu)
    {
        switch (name)
        {
            case "help" or "?": return Help;
            case "info": return Info(args.Count > 0 ? args[0] : "", args.Skip(1).ToList());
            case "stop": Expect(name, args, 0); qmp.Invoke("stop"); return "";
            case "cont" or "c": Expect(name, args, 0); qmp.Invoke("cont"); return "";
            case "quit" or "q": Expect(name, args, 0); qmp.Invoke("quit"); return "";
            case "system_reset": Expect(name, args, 0); qmp.Invoke("system_reset"); return "";
            case "migrate_cancel": Expect(name, args, 0); qmp.Invoke("migrate_cancel"); return "";
            case "x" or "xp":
            {
                if (args.Count is < 1 or > 2) throw QmpException.Generic($"{name} takes [/fmt] addr");
                return _inspect.Examine(args.Count == 2 ? args[0] : null, args[^1], physical: name == "xp", cpu: cpu);
            }
            case "migrate":
            {
                // -d (detach) is accepted and implied: a monitor command never waits for the snapshot here.
                var rest = args.Where(a => a != "-d").ToList();
                if (rest.Any(a => a is "-b" or "-i")) throw QmpException.Generic("MiniVmm has no block devices to migrate");
                Expect(name, rest, 1);
                qmp.Invoke("migrate", new JsonObject { ["uri"] = rest[0] });
                return "";
            }
            case "migrate_set_capability":
            {
                Expect(name, args, 2);
                bool state = args[1] switch
                {
                    "on" or "true" => true,
                    "off" or "false" => false,
                    _ => throw QmpException.Generic($"Parameter 'state' expects 'on' or 'off'"),
                };
                qmp.Invoke("migrate-set-capabilities", new JsonObject
                {
                    ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = args[0], ["state"] = state }),
                });
                return "";
            }
            case "migrate_set_parameter":
                Expect(name, args, 2);
                qmp.Invoke("migrate-set-parameters", new JsonObject { [args[0]] = ParameterValue(args[0], args[1]) });
                return "";
            case "migrate_set_speed":
                Expect(name, args, 1);
                qmp.Invoke("migrate-set-parameters", new JsonObject { ["max-bandwidth"] = ParameterValue("max-bandwidth", args[0]) });
                return "";
            default:
                return $"unknown command: '{name}'\n";
        }
    }

    private static void Expect(string name, List<string> args, int count)
    {
        if (args.Count != count)
            throw QmpException.Generic($"{name} takes {(count == 0 ? "no" : count.ToString(CultureInfo.InvariantCulture))} argument{(count == 1 ? "" : "s")} ({args.Count} given)");
    }

    private static JsonNode ParameterValue(string parameter, string text)
    {
        if (parameter == "x-minivmm-engine") return text;
        if (parameter == "max-bandwidth") return ParseBandwidth(text);
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n)) return n;
        throw QmpException.Generic($"Parameter '{parameter}' expects a number");
    }

    /// <summary>HMP's max-bandwidth is in MiB/s unless a suffix (B, K, M, G) says otherwise, as in QEMU.</summary>
    private static long ParseBandwidth(string text)
    {
        string digits = text.TrimEnd('B', 'b', 'K', 'k', 'M', 'm', 'G', 'g');
        char unit = text.Length > digits.Length ? char.ToUpperInvariant(text[digits.Length]) : 'M';
        if (!double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || v < 0 || text.Length - digits.Length > 1)
            throw QmpException.Generic($"Parameter 'max-bandwidth' expects a size such as 100M, not '{text}'");
        int shift = unit switch { 'B' => 0, 'K' => 10, 'M' => 20, _ => 30 };
        return (long)(v * (1L << shift));
    }

    private string Info(string what, List<string> infoArgs)
    {
        switch (what)
        {
            case "status":
                string status = qmp.RunState.Status;
                return status switch
                {
                    "running" => "VM status: running\n",
                    "paused" => "VM status: paused\n",
                    _ => $"VM status: paused ({status})\n",
                };
            case "registers":
                return string.Concat(Enumerable.Range(0, qmp.Vm.VcpuThreads.Count)
                    .Where(i => i == 0 || infoArgs.Contains("-a"))
                    .Select(_inspect.Registers));
            case "version":
                return $"{QmpMessages.QemuMajor}.{QmpMessages.QemuMinor}.{QmpMessages.QemuMicro} ({QmpMessages.Package})\n";
            case "cpus":
            {
                var sb = new StringBuilder();
                foreach (var cpu in qmp.Invoke("query-cpus-fast")!.AsArray())
                    sb.Append(CultureInfo.InvariantCulture, $"{(cpu!["cpu-index"]!.GetValue<int>() == 0 ? "*" : " ")} CPU #{cpu["cpu-index"]}: thread_id={cpu["thread-id"]}\n");
                return sb.ToString();
            }
            case "migrate_capabilities":
            {
                var sb = new StringBuilder();
                foreach (var c in qmp.Settings.QueryCapabilities())
                    sb.Append(CultureInfo.InvariantCulture, $"{c!["capability"]}: {(c["state"]!.GetValue<bool>() ? "on" : "off")}\n");
                return sb.ToString();
            }
            case "migrate_parameters":
            {
                var p = qmp.Settings.QueryParameters();
                return $"max-bandwidth: {p["max-bandwidth"]} bytes/second\ndowntime-limit: {p["downtime-limit"]} ms\n" +
                       $"x-minivmm-engine: {p["x-minivmm-engine"]}\nx-minivmm-fault-around: {p["x-minivmm-fault-around"]} pages\n";
            }
            case "migrate":
                return FormatMigrate(qmp.Migration.Query());
            default:
                return what.Length == 0
                    ? "info cpus|migrate|migrate_capabilities|migrate_parameters|registers|status|version\n"
                    : $"unknown info command: '{what}'\n";
        }
    }

    /// <summary>QEMU's `info migrate` layout (the lines scripts grep), plus MiniVmm's fault statistics.</summary>
    private string FormatMigrate(JsonObject info)
    {
        var sb = new StringBuilder();
        var caps = qmp.Settings.QueryCapabilities().Take(2).Select(c => $"{c!["capability"]}: {(c["state"]!.GetValue<bool>() ? "on" : "off")}");
        sb.Append("capabilities: ").AppendJoin(" ", caps).Append('\n');
        if (!info.ContainsKey("status")) return sb.ToString();
        sb.Append(CultureInfo.InvariantCulture, $"Migration status: {info["status"]}\n");
        if (info["error-desc"] is { } error) sb.Append(CultureInfo.InvariantCulture, $"error description: {error}\n");
        if (info["total-time"] is { } total) sb.Append(CultureInfo.InvariantCulture, $"total time: {total} ms\n");
        if (info["downtime"] is { } downtime) sb.Append(CultureInfo.InvariantCulture, $"downtime: {downtime} ms\n");
        if (info["setup-time"] is { } setup) sb.Append(CultureInfo.InvariantCulture, $"setup: {setup} ms\n");
        if (info["ram"] is JsonObject ram)
        {
            sb.Append(CultureInfo.InvariantCulture, $"transferred ram: {Long(ram, "transferred") >> 10} kbytes\n");
            sb.Append(CultureInfo.InvariantCulture, $"throughput: {ram["mbps"]!.GetValue<double>().ToString("F2", CultureInfo.InvariantCulture)} mbps\n");
            sb.Append(CultureInfo.InvariantCulture, $"remaining ram: {Long(ram, "remaining") >> 10} kbytes\n");
            sb.Append(CultureInfo.InvariantCulture, $"total ram: {Long(ram, "total") >> 10} kbytes\n");
            sb.Append(CultureInfo.InvariantCulture, $"duplicate: {ram["duplicate"]} pages\n");
            sb.Append(CultureInfo.InvariantCulture, $"normal: {ram["normal"]} pages\n");
            sb.Append(CultureInfo.InvariantCulture, $"normal bytes: {Long(ram, "normal-bytes") >> 10} kbytes\n");
            sb.Append(CultureInfo.InvariantCulture, $"pages-per-second: {ram["pages-per-second"]}\n");
        }
        if (info["x-minivmm"] is JsonObject x)
            foreach (var (key, value) in x)
                sb.Append(CultureInfo.InvariantCulture, $"{key}: {(value is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : value?.ToJsonString())}\n");
        return sb.ToString();
    }

    private static long Long(JsonObject o, string key) => o[key]!.GetValue<long>();
}
