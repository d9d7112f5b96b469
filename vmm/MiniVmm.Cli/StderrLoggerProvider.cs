using System.Text;
using Microsoft.Extensions.Logging;

namespace MiniVmm.Cli;

/// <summary>
/// One line per message on stderr: "HH:mm:ss.fff level: category[event] message", then the exception if any.
/// Used instead of Microsoft.Extensions.Logging.Console, whose set-up (options, formatters, a writer thread) took
/// a visible part of a VM start (docs/DESIGN-NOTES.md). Writes are synchronous: log lines are rare, none is lost
/// at exit, and lines from different threads never interleave (one locked write each).
/// </summary>
internal sealed class StderrLoggerProvider : ILoggerProvider
{
    private readonly object _lock = new();
    private readonly TextWriter _out;

    public StderrLoggerProvider(TextWriter? output = null) => _out = output ?? Console.Error;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    private void Write(string line)
    {
        lock (_lock)
        {
            _out.Write(line);
            _out.Flush();
        }
    }

    internal static string Format(DateTime now, LogLevel level, string category, EventId id, string message, Exception? error)
    {
        var sb = new StringBuilder(64 + message.Length);
        sb.Append(now.ToString("HH:mm:ss.fff ", System.Globalization.CultureInfo.InvariantCulture))
          .Append(ShortName(level)).Append(": ").Append(category).Append('[').Append(id.Id).Append("] ")
          .Append(message.ReplaceLineEndings(" "));
        if (error is not null) sb.Append(Environment.NewLine).Append(error);
        return sb.Append(Environment.NewLine).ToString();
    }

    private static string ShortName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };

    private sealed class Logger(StderrLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        // The factory's minimum level filters before this is called.
        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            owner.Write(Format(DateTime.Now, logLevel, category, eventId, formatter(state, exception), exception));
        }
    }
}
