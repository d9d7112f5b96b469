namespace MiniVmm.Core.Logging;

/// <summary>
/// The rate limit for messages a guest can cause as often as it likes: at most <c>perSecond</c> per one-second window.
/// Callers ask for a slot before they format anything, so a flood costs a lock and a counter, not a string.
/// Thread-safe.
/// </summary>
public sealed class LogRateLimiter
{
    private readonly TimeProvider _time;
    private readonly int _perSecond;
    private readonly Lock _lock = new();
    private long _windowStart;
    private int _inWindow;
    private long _suppressedInWindow;
    private long _suppressed;

    public LogRateLimiter(int perSecond, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(perSecond);
        _perSecond = perSecond;
        _time = time ?? TimeProvider.System;
        _windowStart = _time.GetTimestamp();
    }

    /// <summary>Messages refused so far.</summary>
    public long Suppressed => Interlocked.Read(ref _suppressed);

    /// <summary>
    /// True when a message may be logged now. <paramref name="suppressedBefore"/> is how many were refused since the
    /// last one that was allowed (non-zero only for the first message of a new window).
    /// </summary>
    public bool TryTake(out long suppressedBefore)
    {
        suppressedBefore = 0;
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            if (_time.GetElapsedTime(_windowStart, now) >= TimeSpan.FromSeconds(1))
            {
                suppressedBefore = _suppressedInWindow;
                _suppressedInWindow = 0;
                _inWindow = 0;
                _windowStart = now;
            }
            if (_inWindow < _perSecond)
            {
                _inWindow++;
                return true;
            }
            _suppressedInWindow++;
        }
        Interlocked.Increment(ref _suppressed);
        return false;
    }
}
