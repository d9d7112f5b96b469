using System.Diagnostics;

namespace MiniVmm.Integration.Tests;

/// <summary>A process whose stdout is read line by line as it comes, each line stamped with the time since start (for
/// the report of a failed test, never for an assertion).</summary>
public sealed class ConsoleCapture : IDisposable
{
    private readonly Process _process;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<(double Seconds, string Line)> _lines = [];
    private readonly Lock _lock = new();
    private readonly System.Text.StringBuilder _stderr = new();

    private ConsoleCapture(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_lock) _lines.Add((_clock.Elapsed.TotalSeconds, e.Data.TrimEnd('\r')));
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_lock) _stderr.AppendLine(e.Data);
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _process.StandardInput.Close();
    }

    public static ConsoleCapture Start(string program, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        return new ConsoleCapture(Process.Start(psi)!);
    }

    /// <summary>The console lines so far, without the empty ones.</summary>
    public IReadOnlyList<string> Lines
    {
        get { lock (_lock) return _lines.Where(l => l.Line.Trim().Length > 0).Select(l => l.Line.Trim()).ToList(); }
    }

    public string Stderr { get { lock (_lock) return _stderr.ToString(); } }

    /// <summary>Every line with its time, for a failure message.</summary>
    public string Transcript()
    {
        lock (_lock) return string.Join('\n', _lines.Select(l => $"{l.Seconds,7:F2}s | {l.Line}")) + "\n" + _stderr;
    }

    /// <summary>Waits until a line satisfies <paramref name="match"/>, the process ends, or <paramref name="limit"/> passes.</summary>
    public bool WaitFor(Func<string, bool> match, TimeSpan limit)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < limit)
        {
            if (Lines.Any(match)) return true;
            if (_process.HasExited) { _process.WaitForExit(); return Lines.Any(match); }
            Thread.Sleep(50);
        }
        return Lines.Any(match);
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
