namespace MiniVmm.Devices.Virtio.Net;

/// <summary>One <c>--net</c> option: <c>tap=NAME[,mac=MAC]</c>. Without a MAC the VM gives slot i
/// <see cref="MacAddress.DefaultFor"/>.</summary>
public sealed record NetSpec(string Tap, MacAddress? Mac = null)
{
    /// <exception cref="FormatException">The text is not a valid net option; the message says why.</exception>
    public static NetSpec Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new FormatException("--net needs tap=NAME");
        string? tap = null;
        MacAddress? mac = null;
        foreach (var part in text.Split(','))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0) throw new FormatException($"--net: '{part}' is not KEY=VALUE");
            string key = part[..eq], value = part[(eq + 1)..];
            switch (key)
            {
                case "tap":
                    if (tap is not null) throw new FormatException("--net: tap= given twice");
                    if (TapNameProblem(value) is { } problem) throw new FormatException("--net: " + problem);
                    tap = value;
                    break;
                case "mac":
                    if (mac is not null) throw new FormatException("--net: mac= given twice");
                    mac = MacAddress.Parse(value);
                    break;
                default:
                    throw new FormatException($"--net: unknown option '{key}' (known: tap, mac)");
            }
        }
        if (tap is null) throw new FormatException("--net needs tap=NAME (the tap interface to attach to)");
        return new NetSpec(tap, mac);
    }

    /// <summary>Why <paramref name="name"/> cannot be the tap of a <c>--net</c> option, or null: the kernel's rule for an
    /// interface name, and no ',' or '=' (they separate the options).</summary>
    public static string? TapNameProblem(string name) =>
        MiniVmm.Core.Net.InterfaceName.Problem(name)
        ?? (name.AsSpan().IndexOfAny(',', '=') >= 0 ? $"tap name '{name}' contains ',' or '=', which separate the --net options" : null);

    /// <summary>The MAC of the <paramref name="slot"/>-th network device: the given one or the slot's default.</summary>
    public MacAddress MacFor(int slot) => Mac ?? MacAddress.DefaultFor(slot);

    public string ToOptionText() => Mac is { } m ? $"tap={Tap},mac={m}" : $"tap={Tap}";
}
