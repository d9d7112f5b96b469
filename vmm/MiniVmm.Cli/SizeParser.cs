using System.Globalization;

namespace MiniVmm.Cli;

/// <summary>Parses sizes like "512M", "1G", "65536", "4k" (binary units).</summary>
public static class SizeParser
{
    public static bool TryParse(string text, out ulong bytes, out string? error)
    {
        bytes = 0;
        error = null;
        string s = text.Trim();
        if (s.Length == 0) { error = "empty size"; return false; }
        ulong multiplier = 1;
        char last = char.ToUpperInvariant(s[^1]);
        if (s.EndsWith("iB", StringComparison.OrdinalIgnoreCase) && s.Length > 2) { last = char.ToUpperInvariant(s[^3]); s = s[..^2]; }
        else if (s.EndsWith('B') || s.EndsWith('b')) { s = s[..^1]; last = s.Length > 0 ? char.ToUpperInvariant(s[^1]) : ' '; }
        switch (last)
        {
            case 'K': multiplier = 1UL << 10; s = s[..^1]; break;
            case 'M': multiplier = 1UL << 20; s = s[..^1]; break;
            case 'G': multiplier = 1UL << 30; s = s[..^1]; break;
        }
        if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
        {
            error = $"'{text}' is not a size (examples: 512M, 1G, 65536)";
            return false;
        }
        bytes = n * multiplier;
        if (n != 0 && bytes / multiplier != n) { error = $"'{text}' is too large"; return false; }
        return true;
    }
}
