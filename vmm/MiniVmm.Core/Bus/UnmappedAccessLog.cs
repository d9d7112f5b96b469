using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Logging;

namespace MiniVmm.Core.Bus;

/// <summary>
/// Counts and logs guest accesses that no device maps, for one bus. The guest controls how often this happens (a loop
/// probing ports), so logging is rate-limited: at most <see cref="MaxMessagesPerSecond"/> messages per one-second
/// window, then one summary of how many were suppressed when the next window opens. Counting is exact.
/// </summary>
/// <remarks>Thread-safe: vCPU threads call it concurrently. Counters are updated with interlocked operations; the
/// rate-limit window takes a short lock, only on unmapped accesses (never on the mapped fast path).</remarks>
public sealed partial class UnmappedAccessLog
{
    private readonly ILogger _logger;
    private readonly LogRateLimiter _limit;

    private long _reads;
    private long _writes;

    public UnmappedAccessLog(BusKind kind, string busName, ILogger? logger = null, int maxMessagesPerSecond = 10,
        TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxMessagesPerSecond);
        if (!Enum.IsDefined(kind))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown bus kind");
        Kind = kind;
        BusName = busName ?? throw new ArgumentNullException(nameof(busName));
        _logger = logger ?? NullLogger.Instance;
        MaxMessagesPerSecond = maxMessagesPerSecond;
        _limit = new LogRateLimiter(maxMessagesPerSecond, timeProvider);
    }

    /// <summary>Creates a log for <paramref name="bus"/> (same kind and name).</summary>
    public static UnmappedAccessLog For(Bus bus, ILogger? logger = null, int maxMessagesPerSecond = 10,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(bus);
        return new UnmappedAccessLog(bus.Kind, bus.Name, logger, maxMessagesPerSecond, timeProvider);
    }

    public BusKind Kind { get; }
    public string BusName { get; }
    public int MaxMessagesPerSecond { get; }

    /// <summary>Unmapped reads seen so far.</summary>
    public long UnmappedReads => Interlocked.Read(ref _reads);

    /// <summary>Unmapped writes seen so far.</summary>
    public long UnmappedWrites => Interlocked.Read(ref _writes);

    /// <summary>Messages not logged because of the rate limit.</summary>
    public long SuppressedMessages => _limit.Suppressed;

    /// <summary>The value an unmapped read returns: all ones on PIO (a floating ISA bus), zeros on MMIO.</summary>
    public static void FillUnmappedRead(BusKind kind, Span<byte> data) =>
        data.Fill(kind == BusKind.Pio ? (byte)0xFF : (byte)0x00);

    /// <summary>Records an unmapped read and fills <paramref name="data"/> per <see cref="Kind"/>.</summary>
    public void OnUnmappedRead(ulong address, Span<byte> data)
    {
        FillUnmappedRead(Kind, data);
        Interlocked.Increment(ref _reads);
        if (_limit.TryTake(out long suppressed))
        {
            LogSuppressedIfAny(suppressed);
            LogUnmappedRead(BusName, address, data.Length);
        }
    }

    /// <summary>Records an unmapped write (the data is dropped).</summary>
    public void OnUnmappedWrite(ulong address, ReadOnlySpan<byte> data)
    {
        Interlocked.Increment(ref _writes);
        if (_limit.TryTake(out long suppressed))
        {
            LogSuppressedIfAny(suppressed);
            LogUnmappedWrite(BusName, address, data.Length, ToHexValue(data));
        }
    }

    /// <summary>Dispatches a read on <paramref name="bus"/>; when unmapped, fills and records it. Never throws for
    /// guest input.</summary>
    public void Read(Bus bus, ulong address, Span<byte> data)
    {
        if (!bus.TryRead(address, data))
            OnUnmappedRead(address, data);
    }

    /// <summary>Dispatches a write on <paramref name="bus"/>; when unmapped, records it.</summary>
    public void Write(Bus bus, ulong address, ReadOnlySpan<byte> data)
    {
        if (!bus.TryWrite(address, data))
            OnUnmappedWrite(address, data);
    }

    private void LogSuppressedIfAny(long suppressed)
    {
        if (suppressed > 0)
            LogSuppressed(BusName, suppressed);
    }

    private static ulong ToHexValue(ReadOnlySpan<byte> data)
    {
        ulong value = 0;
        int n = Math.Min(data.Length, sizeof(ulong));
        for (int i = n - 1; i >= 0; i--)
            value = (value << 8) | data[i];
        return value;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Bus} bus: unmapped read of {Size} bytes at 0x{Address:x}")]
    private partial void LogUnmappedRead(string bus, ulong address, int size);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "{Bus} bus: unmapped write of {Size} bytes at 0x{Address:x} (value 0x{Value:x})")]
    private partial void LogUnmappedWrite(string bus, ulong address, int size, ulong value);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "{Bus} bus: {Count} unmapped-access messages suppressed in the last window (rate limit)")]
    private partial void LogSuppressed(string bus, long count);
}
