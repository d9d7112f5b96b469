namespace MiniVmm.Devices.Virtio.Block;

/// <summary>Host page cache policy of a drive.</summary>
public enum DriveCache
{
    /// <summary>Through the host page cache; guest flushes become fsync.</summary>
    Writeback,
    /// <summary>Bypass the host page cache (O_DIRECT where the host file system and the request alignment allow).</summary>
    None,
}

/// <summary>
/// One <c>--drive</c> option: <c>file=PATH[,readonly=on|off][,cache=none|writeback]</c>. The path may not contain a
/// comma (write it as <c>,,</c>, as QEMU does).
/// </summary>
public sealed record DriveSpec(string Path, bool ReadOnly = false, DriveCache Cache = DriveCache.Writeback)
{
    /// <exception cref="FormatException">The text is not a valid drive option; the message says why.</exception>
    public static DriveSpec Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new FormatException("--drive needs file=PATH");
        string? path = null;
        bool readOnly = false;
        var cache = DriveCache.Writeback;
        foreach (var part in SplitOptions(text))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0) throw new FormatException($"--drive: '{part}' is not KEY=VALUE");
            string key = part[..eq], value = part[(eq + 1)..];
            switch (key)
            {
                case "file":
                    if (value.Length == 0) throw new FormatException("--drive: file= is empty");
                    if (path is not null) throw new FormatException("--drive: file= given twice");
                    path = value;
                    break;
                case "readonly":
                    readOnly = value switch
                    {
                        "on" or "true" or "yes" => true,
                        "off" or "false" or "no" => false,
                        _ => throw new FormatException($"--drive: readonly={value} is not on or off"),
                    };
                    break;
                case "cache":
                    cache = TryParseCache(value) ?? throw new FormatException($"--drive: cache={value} is not none or writeback");
                    break;
                default:
                    throw new FormatException($"--drive: unknown option '{key}' (known: file, readonly, cache)");
            }
        }
        if (path is null) throw new FormatException("--drive needs file=PATH");
        return new DriveSpec(path, readOnly, cache);
    }

    /// <summary>The option's name of a cache mode, and back (null for an unknown name).</summary>
    public static string CacheName(DriveCache cache) => cache == DriveCache.None ? "none" : "writeback";

    public static DriveCache? TryParseCache(string name) => name switch
    {
        "none" => DriveCache.None,
        "writeback" => DriveCache.Writeback,
        _ => null,
    };

    /// <summary>The <c>--drive</c> text that parses back to this spec (commas in the path doubled).</summary>
    public string ToOptionText() =>
        $"file={Path.Replace(",", ",,", StringComparison.Ordinal)}{(ReadOnly ? ",readonly=on" : "")},cache={CacheName(Cache)}";

    /// <summary>Splits on single commas; ",," is a literal comma.</summary>
    private static IEnumerable<string> SplitOptions(string text)
    {
        var current = new System.Text.StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == ',')
            {
                if (i + 1 < text.Length && text[i + 1] == ',') { current.Append(','); i++; continue; }
                yield return current.ToString();
                current.Clear();
                continue;
            }
            current.Append(text[i]);
        }
        yield return current.ToString();
    }
}
