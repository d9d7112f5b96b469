using System.Globalization;

namespace MiniVmm.Cli;

/// <summary>
/// Parses sizes like "512M", "1G", "4k", "2GiB", "4096B" (binary units). A number without a unit is in the caller's
/// unit: MiB for guest RAM, as QEMU's -m (so `--mem 64` is 64 MiB, not 64 bytes).
/// </summary>
public static class SizeParser
{
    public const ulong MiB = 1UL << 20;

    public static bool TryParse(string text, out ulong bytes, out string? error, ulong unitlessScale = 1)
    {
        bytes = 0;
        error = null;
        string s = text.Trim();
        if (s.Length == 0) { error = "empty size"; return false; }
        ulong multiplier = unitlessScale;
        if (s.EndsWith("iB", StringComparison.OrdinalIgnoreCase)) s = s[..^2];
        else if (s.Length > 1 && char.IsLetter(s[^2]) && (s[^1] is 'B' or 'b')) s = s[..^1]; // "512MB"
        else if (s[^1] is 'B' or 'b') { multiplier = 1; s = s[..^1]; }                     // "4096B": bytes
        if (s.Length > 0)
        {
            switch (char.ToUpperInvariant(s[^1]))
            {
                case 'K': multiplier = 1UL << 10; s = s[..^1]; break;
                case 'M': multiplier = 1UL << 20; s = s[..^1]; break;
                case 'G': multiplier = 1UL << 30; s = s[..^1]; break;
                case 'T': multiplier = 1UL << 40; s = s[..^1]; break;
            }
        }
        if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
        {
            error = $"'{text}' is not a size (examples: 512M, 1G; a plain number is {UnitName(unitlessScale)})";
            return false;
        }
        bytes = n * multiplier;
        if (n != 0 && bytes / multiplier != n) { error = $"'{text}' is too large"; return false; }
        return true;
    }

    private static string UnitName(ulong scale) => scale switch { 1 => "bytes", 1UL << 10 => "KiB", 1UL << 20 => "MiB", _ => $"{scale}-byte units" };
}
