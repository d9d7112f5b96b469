using Microsoft.Extensions.Logging;

namespace MiniVmm.Cli;

internal static class Logging
{
    /// <summary>All log output goes to stderr so stdout carries only the guest's serial console.</summary>
    /// <remarks>
    /// Built with the LoggerFactory constructor rather than LoggerFactory.Create, which sets up a dependency-injection
    /// container and the options system first: with the console provider, a visible part of a VM start (DESIGN-NOTES).
    /// </remarks>
    public static ILoggerFactory Create(LogLevel level) =>
        new LoggerFactory([new StderrLoggerProvider()], new LoggerFilterOptions { MinLevel = level });

    public static bool TryParseLevel(string text, out LogLevel level) => Enum.TryParse(text, ignoreCase: true, out level)
        || (text.Equals("warn", StringComparison.OrdinalIgnoreCase) && (level = LogLevel.Warning) == LogLevel.Warning);
}
