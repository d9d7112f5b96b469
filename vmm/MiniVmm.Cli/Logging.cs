using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace MiniVmm.Cli;

internal static class Logging
{
    /// <summary>All log output goes to stderr so stdout carries only the guest's serial console.</summary>
    public static ILoggerFactory Create(LogLevel level) => LoggerFactory.Create(b => b
        .SetMinimumLevel(level)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
        .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; }));

    public static bool TryParseLevel(string text, out LogLevel level) => Enum.TryParse(text, ignoreCase: true, out level)
        || (text.Equals("warn", StringComparison.OrdinalIgnoreCase) && (level = LogLevel.Warning) == LogLevel.Warning);
}
