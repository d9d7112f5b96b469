using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>Keeps every warning and error logged, formatted.</summary>
internal sealed class RecordingLogger : ILogger
{
    public ConcurrentQueue<string> Warnings { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (logLevel >= LogLevel.Warning) Warnings.Enqueue(formatter(state, exception));
    }
}
