using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Cli;

/// <summary>
/// `run --config vm.json`: a JSON object whose keys are `run`'s option names without the dashes ("kernel", "mem",
/// "cpus", "qmp", "snapshot-to", ...) and whose values are what the option takes (a string, number or boolean; a list
/// for "qmp"). Options given on the command line win. The file is turned into the same options, so a value is checked
/// exactly as when typed; a key that is no option, or a value of the wrong JSON kind, is refused naming the key.
/// `restore --print-config` writes such a file from a snapshot's recorded machine.
/// </summary>
internal static class ConfigFile
{
    private const int MaxConfigBytes = 1 << 20;

    /// <summary>The arguments with the config file's settings added for every option not already given; false with a message on a bad file.</summary>
    public static bool TryExpand(Command run, ParseResult parse, string[] args, out string[] expanded, out string? error)
    {
        expanded = args;
        error = null;
        var configOption = run.Options.First(o => o.Name == "--config");
        if (parse.CommandResult.Command != run || parse.GetResult(configOption) is not { Implicit: false } given) return true;
        string path = given.Tokens.Count > 0 ? given.Tokens[0].Value : "";
        JsonObject settings;
        try
        {
            // A FIFO or device would block or never end; a config file is small.
            if (KvmSharp.FileKinds.Refusal(path, "--config", "a regular file", KvmSharp.FileKind.Regular) is { } why) throw new IOException(why);
            if (File.Exists(path) && new FileInfo(path).Length > MaxConfigBytes) throw new IOException($"it is larger than {MaxConfigBytes} bytes");
            settings = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject
                ?? throw new JsonException("the file is not a JSON object");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            error = $"--config: cannot read '{path}': {e.Message}";
            return false;
        }
        var extra = new List<string>();
        foreach (var (key, value) in settings)
        {
            var option = run.Options.FirstOrDefault(o => o.Name == "--" + key && o.Name is not "--config" and not "--help");
            if (option is null)
            {
                var known = run.Options.Where(o => o.Name is not "--config" and not "--help" and not "--version").Select(o => o.Name[2..]);
                error = $"{path}: '{key}' is not a run option (keys: {string.Join(", ", known)})";
                return false;
            }
            if (parse.GetResult(option) is { Implicit: false }) continue; // the command line wins
            bool repeatable = option.Arity.MaximumNumberOfValues > 1;
            if (!TryTokens(value, repeatable, out var tokens))
            {
                error = $"{path}: '{key}' must be {(repeatable ? "a string or a list of strings" : "a string, number or true/false")}";
                return false;
            }
            // One --key=value token each: a value starting with '-' or '@' must not be read as an option or a response file.
            foreach (string t in tokens) extra.Add($"{option.Name}={t}");
        }
        expanded = [.. args, .. extra];
        return true;
    }

    private static bool TryTokens(JsonNode? value, bool list, out List<string> tokens)
    {
        tokens = new List<string>();
        if (value is JsonArray array && list)
        {
            foreach (var item in array)
            {
                if (!TryScalar(item, out string? s)) return false;
                tokens.Add(s!);
            }
            return true;
        }
        if (!TryScalar(value, out string? one)) return false;
        tokens.Add(one!);
        return true;
    }

    private static bool TryScalar(JsonNode? node, out string? text)
    {
        text = null;
        if (node is not JsonValue v) return false;
        switch (v.GetValueKind())
        {
            case JsonValueKind.String: text = v.GetValue<string>(); return true;
            case JsonValueKind.Number: text = v.ToJsonString(); return true;
            case JsonValueKind.True: text = "true"; return true;
            case JsonValueKind.False: text = "false"; return true;
            default: return false;
        }
    }

    /// <summary>What `run --config` accepts to boot the machine a snapshot recorded (restore --print-config).</summary>
    public static string FromRecorded(MiniVmm.Machine.Snapshots.RecordedVmConfig recorded)
    {
        // The user's command line: a new boot appends its own tsc_khz= and device announcements.
        ulong mem = recorded.MemoryBytes;
        var o = new JsonObject
        {
            ["kernel"] = recorded.KernelPath,
            ["cmdline"] = recorded.UserCommandLine,
            ["mem"] = mem % (1UL << 20) == 0 ? (mem >> 20).ToString(CultureInfo.InvariantCulture) + "M" : mem.ToString(CultureInfo.InvariantCulture) + "B",
            ["cpus"] = recorded.Vcpus,
            ["huge-pages"] = recorded.HugePages,
        };
        if (recorded.Drives.Length > 0)
            o["drive"] = new JsonArray([.. recorded.Drives.Select(d => (JsonNode)JsonValue.Create(new MiniVmm.Devices.Virtio.Block.DriveSpec(
                d.Path, d.ReadOnly, MiniVmm.Devices.Virtio.Block.DriveSpec.TryParseCache(d.Cache) ?? MiniVmm.Devices.Virtio.Block.DriveCache.Writeback).ToOptionText())!)]);
        if (recorded.Rng) o["rng"] = true;
        if (recorded.InitrdPath is { } initrd) o["initrd"] = initrd;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
