using Microsoft.Extensions.Logging;

namespace MiniVmm.Devices.Virtio;

/// <summary>
/// Warnings caused by the guest (a malformed ring, a bad request), at most <c>perSecond</c> messages per one-second
/// window so a hostile driver cannot flood the log; the number suppressed is reported with the next message.
/// </summary>
public sealed class RateLimitedLog(ILogger logger, int perSecond = 5, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _lock = new();
    private long _windowStart = long.MinValue;
    private int _inWindow;
    private long _suppressed;

    /// <summary>Messages dropped by the rate limit so far.</summary>
    public long Suppressed { get; private set; }

    public void Warn(string device, string message)
    {
        long suppressed;
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            if (_windowStart == long.MinValue || _time.GetElapsedTime(_windowStart, now) >= TimeSpan.FromSeconds(1))
            {
                _windowStart = now;
                _inWindow = 0;
            }
            if (_inWindow >= perSecond)
            {
                _suppressed++;
                Suppressed++;
                return;
            }
            _inWindow++;
            suppressed = _suppressed;
            _suppressed = 0;
        }
        if (suppressed > 0)
            logger.LogWarning("{Device}: {Message} ({Suppressed} similar messages suppressed)", device, message, suppressed);
        else
            logger.LogWarning("{Device}: {Message}", device, message);
    }
}
