using System.Globalization;
using System.Text;

namespace MiniVmm.Cli;

/// <summary>
/// The file each snapshot of one VM goes to: `--snapshot-to 'vm-%n.mvs'` numbers them (%n: 1, 2, ... skipping names
/// that exist), `%t` is the UTC start time (20261201T214530Z), `%%` a percent sign. An existing file is never replaced
/// unless <c>--snapshot-overwrite</c> was given, so a second SIGUSR1 cannot destroy the first snapshot by accident.
/// `exec:CMD` destinations are passed through unchanged.
/// </summary>
internal sealed class SnapshotNaming(string pattern, bool overwrite)
{
    private int _next = 1;
    private readonly bool _counted = HasCounter(pattern);

    /// <summary>True when the pattern has a %n placeholder (a literal %%n is not one).</summary>
    private static bool HasCounter(string pattern)
    {
        for (int i = 0; i + 1 < pattern.Length; i++)
        {
            if (pattern[i] != '%') continue;
            if (pattern[i + 1] == 'n') return true;
            i++; // %% or %t: skip the placeholder's second character
        }
        return false;
    }

    /// <summary>Checks the pattern's placeholders; null when it is fine.</summary>
    public static string? Validate(string pattern)
    {
        if (pattern.StartsWith("exec:", StringComparison.Ordinal)) return null;
        for (int i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] != '%') continue;
            if (i + 1 >= pattern.Length || pattern[i + 1] is not ('n' or 't' or '%'))
                return $"--snapshot-to: '{pattern}' has an unknown placeholder (use %n for a counter, %t for the UTC time, %% for %)";
            i++;
        }
        return null;
    }

    /// <summary>The destination for the snapshot starting now, or false with why it cannot be taken.</summary>
    public bool TryNext(DateTime utcNow, out string destination, out string? error)
    {
        error = null;
        if (pattern.StartsWith("exec:", StringComparison.Ordinal)) { destination = pattern; return true; }
        if (pattern.StartsWith("s3://", StringComparison.Ordinal))
        {
            // An object store has no cheap "exists" for every name: %n just counts, and a complete upload replaces an
            // object of the same key atomically (the store's own semantics).
            destination = Expand(pattern, _next, utcNow);
            if (_counted) _next++;
            return true;
        }
        for (int attempts = 0; ; attempts++)
        {
            destination = Expand(pattern, _next, utcNow);
            if (_counted) _next++;
            // A name whose .partial exists is taken too: another save is writing it.
            if (overwrite || !(File.Exists(destination) || File.Exists(destination + ".partial"))) return true;
            if (!_counted || attempts > 100_000)
            {
                error = $"'{destination}' exists; give --snapshot-overwrite to replace it, or a name with %n or %t";
                return false;
            }
        }
    }

    internal static string Expand(string pattern, int counter, DateTime utc)
    {
        var sb = new StringBuilder(pattern.Length + 16);
        for (int i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] != '%' || i + 1 >= pattern.Length) { sb.Append(pattern[i]); continue; }
            char c = pattern[++i];
            if (c == 'n') sb.Append(counter.ToString(CultureInfo.InvariantCulture));
            else if (c == 't') sb.Append(utc.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
