using Microsoft.Extensions.Logging;
using MiniVmm.Core.Logging;

namespace MiniVmm.Devices.Virtio;

/// <summary>
/// Warnings caused by the guest (a malformed ring, a bad request), at most <c>perSecond</c> messages per one-second
/// window so a hostile driver cannot flood the log; the number suppressed is reported with the next message.
/// On paths the guest can drive at will, call <see cref="TryTake"/> first and format only when it allows a message.
/// </summary>
public sealed class RateLimitedLog(ILogger logger, int perSecond = 5, TimeProvider? time = null)
{
    private readonly LogRateLimiter _limit = new(perSecond, time);

    public bool TryTake(out long suppressed) => _limit.TryTake(out suppressed);

    public void Warn(string device, string message)
    {
        if (TryTake(out long suppressed)) Write(device, message, suppressed);
    }

    /// <summary>Logs a message whose slot <see cref="TryTake"/> granted.</summary>
    public void Write(string device, string message, long suppressed)
    {
        if (suppressed > 0)
            logger.LogWarning("{Device}: {Message} ({Suppressed} similar messages suppressed)", device, message, suppressed);
        else
            logger.LogWarning("{Device}: {Message}", device, message);
    }
}
