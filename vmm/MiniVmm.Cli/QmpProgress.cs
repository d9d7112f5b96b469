using System.Globalization;
using System.Text.Json.Nodes;

namespace MiniVmm.Cli;

/// <summary>
/// Turns successive query-migrate replies into progress: the share of RAM covered (zero pages included: that is what
/// is left to do), the bytes written and pages saved so far, the write rate in MiB/s over the last samples (bytes
/// that reached the destination; zero pages cost nothing), faults served and an ETA from the coverage rate. Reads
/// MiniVmm's `x-minivmm` block when present, QEMU's `ram` counters otherwise. On a terminal it redraws one bar in
/// place; elsewhere (a log, CI) it prints a plain line at most once a second.
/// </summary>
internal sealed class QmpProgress(TextWriter output, bool terminal)
{
    private const int BarWidth = 30;
    private readonly Queue<(double Seconds, long Pages, long Bytes)> _window = new();
    private DateTime _lastLine = DateTime.MinValue;
    private bool _barDrawn;

    /// <param name="PagesDone">pages covered (saved or found zero)</param>
    /// <param name="PagesSaved">non-zero pages written</param>
    public readonly record struct Sample(long PagesDone, long PagesTotal, long PagesSaved, long Bytes, long? Faults, double? DowntimeMs);

    public static Sample Read(JsonObject info)
    {
        var ram = info["ram"] as JsonObject;
        long saved = ram is null ? 0 : Long(ram, "normal");
        double? downtime = info["downtime"] is JsonValue d && d.TryGetValue<long>(out long ms) ? ms : null;
        if (info["x-minivmm"] is JsonObject x)
        {
            if (x["downtime-us"] is JsonValue us && us.TryGetValue<long>(out long micro)) downtime = micro / 1000.0;
            return new Sample(Long(x, "pages-done"), Long(x, "pages-total"), Long(x, "pages-saved", saved), Long(x, "bytes-written"),
                Long(x, "faults-served"), downtime);
        }
        if (ram is not null)
        {
            long pageSize = Math.Max(1, Long(ram, "page-size", 4096));
            long total = Long(ram, "total") / pageSize;
            return new Sample(Math.Max(0, total - Long(ram, "remaining") / pageSize), total, saved, Long(ram, "transferred"), null, downtime);
        }
        return default;
    }

    public void Update(JsonObject info, double elapsedSeconds)
    {
        var s = Read(info);
        _window.Enqueue((elapsedSeconds, s.PagesDone, s.Bytes));
        while (_window.Count > 10) _window.Dequeue();
        var first = _window.Peek();
        double span = elapsedSeconds - first.Seconds;
        double pagesPerSecond = span > 0 ? (s.PagesDone - first.Pages) / span : 0;
        double bytesPerSecond = span > 0 ? (s.Bytes - first.Bytes) / span : 0;
        string eta = pagesPerSecond > 0 ? $"{(s.PagesTotal - s.PagesDone) / pagesPerSecond:F1}s" : "--";
        double fraction = s.PagesTotal > 0 ? Math.Clamp((double)s.PagesDone / s.PagesTotal, 0, 1) : 0;
        string text = string.Create(CultureInfo.InvariantCulture,
            $"{fraction * 100,3:F0}%  {s.Bytes / (double)(1 << 20):F1} MiB written, {s.PagesSaved} pages saved  {bytesPerSecond / (1 << 20):F1} MiB/s" +
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
