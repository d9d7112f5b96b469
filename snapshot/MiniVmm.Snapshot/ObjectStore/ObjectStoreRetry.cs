namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>
/// Retries a store call that failed transiently (timeout, dropped connection, 5xx), with doubling backoff from
/// <see cref="FirstDelay"/>, at most <see cref="Attempts"/> tries; the caller's token bounds the whole. A refusal
/// (4xx) or an unreachable store after the last try propagates.
/// </summary>
public static class ObjectStoreRetry
{
    public const int Attempts = 4;
    public static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(100);

    public static async Task<T> Run<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancel)
    {
        var delay = FirstDelay;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await call(cancel).ConfigureAwait(false);
            }
            catch (ObjectStoreException e) when (e.Transient && attempt < Attempts && !cancel.IsCancellationRequested)
            {
                await Task.Delay(delay, cancel).ConfigureAwait(false);
                delay *= 2;
            }
        }
    }
}
