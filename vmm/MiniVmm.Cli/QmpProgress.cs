using System.Globalization;
using System.Text.Json.Nodes;

namespace MiniVmm.Cli;

/// <summary>
/// Turns successive query-migrate replies into progress: pages saved of total, MiB/s of RAM covered (over the last
/// samples, zero pages included, so it matches the ETA), faults
/// served and ETA. Reads MiniVmm's `x-minivmm` block when present, QEMU's `ram` counters otherwise. On a terminal
/// it redraws one bar in place; elsewhere (a log, CI) it prints a plain line at most once a second.
/// </summary>
internal sealed class QmpProgress(TextWriter output, bool terminal)
{
    private const int BarWidth = 30;
    private readonly Queue<(double Seconds, long Pages)> _window = new();
    private DateTime _lastLine = DateTime.MinValue;
    private bool _barDrawn;

    public readonly record struct Sample(long PagesDone, long PagesTotal, long Bytes, long? Faults);

    public static Sample Read(JsonObject info)
    {
        if (info["x-minivmm"] is JsonObject x)
            return new Sample(Long(x, "pages-done"), Long(x, "pages-total"), Long(x, "bytes-written"), Long(x, "faults-served"));
        if (info["ram"] is JsonObject ram)
        {
            long pageSize = Math.Max(1, Long(ram, "page-size", 4096));
            long total = Long(ram, "total") / pageSize;
            return new Sample(Math.Max(0, total - Long(ram, "remaining") / pageSize), total, Long(ram, "transferred"), null);
        }
        return default;
    }

    public void Update(JsonObject info, double elapsedSeconds)
    {
        var s = Read(info);
        _window.Enqueue((elapsedSeconds, s.PagesDone));
        while (_window.Count > 10) _window.Dequeue();
        var first = _window.Peek();
        double span = elapsedSeconds - first.Seconds;
        double pagesPerSecond = span > 0 ? (s.PagesDone - first.Pages) / span : 0;
        string eta = pagesPerSecond > 0 ? $"{(s.PagesTotal - s.PagesDone) / pagesPerSecond:F1}s" : "--";
        double fraction = s.PagesTotal > 0 ? Math.Clamp((double)s.PagesDone / s.PagesTotal, 0, 1) : 0;
        string text = string.Create(CultureInfo.InvariantCulture,
            $"{fraction * 100,3:F0}%  {s.PagesDone}/{s.PagesTotal} pages  {pagesPerSecond * 4096 / (1 << 20):F1} MiB/s" +
            $"{(s.Faults is { } f ? $"  {f} faults" : "")}  ETA {eta}");
        if (terminal)
        {
            int filled = (int)(fraction * BarWidth);
            output.Write($"\r[{new string('#', filled)}{new string('.', BarWidth - filled)}] {text}\u001b[K");
            _barDrawn = true;
        }
        else if (DateTime.UtcNow - _lastLine >= TimeSpan.FromSeconds(1))
        {
            output.WriteLine("snapshot: " + text);
            _lastLine = DateTime.UtcNow;
        }
        output.Flush();
    }

    /// <summary>Ends the bar's line so the outcome starts on a fresh one.</summary>
    public void Finish()
    {
        if (_barDrawn) output.WriteLine();
        _barDrawn = false;
    }

    private static long Long(JsonObject o, string key, long fallback = 0) =>
        o[key] is JsonValue v && v.TryGetValue<long>(out long n) ? n : fallback;
}
