using System.Diagnostics;

namespace MiniVmm.Integration.Tests;

/// <summary>Collects a process's stderr lines as they come, so a test can wait (bounded) for one that says something.</summary>
public sealed class StderrLines
{
    private readonly List<string> _lines = new();
    private readonly Task _reader;

    public StderrLines(Process p)
    {
        _reader = Task.Run(async () =>
        {
            while (await p.StandardError.ReadLineAsync() is { } line)
                lock (_lines) { _lines.Add(line); Monitor.PulseAll(_lines); }
            lock (_lines) { Ended = true; Monitor.PulseAll(_lines); }
        });
    }

    public bool Ended { get; private set; }

    public string Text { get { lock (_lines) return string.Join('\n', _lines); } }

    /// <summary>Waits until a line contains <paramref name="text"/> (at most <paramref name="count"/>-th such line); false on timeout or end.</summary>
    public bool WaitFor(string text, int count = 1, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        lock (_lines)
        {
            while (true)
            {
                if (_lines.Count(l => l.Contains(text, StringComparison.Ordinal)) >= count) return true;
                var left = deadline - DateTime.UtcNow;
                if (Ended || left <= TimeSpan.Zero) return false;
                Monitor.Wait(_lines, left);
            }
        }
    }

    /// <summary>All of stderr once the process has closed it.</summary>
    public string All()
    {
        _reader.Wait(TimeSpan.FromSeconds(30));
        return Text;
    }
}
