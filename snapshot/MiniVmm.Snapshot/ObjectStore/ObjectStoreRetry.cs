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

    /// <summary>
    /// <see cref="Run{T}"/> from a thread that waits for the answer, bounded by <paramref name="deadline"/>: a store that
    /// does not answer in time is an unreachable <see cref="ObjectStoreException"/> naming <paramref name="what"/>,
    /// never a thread blocked for ever nor a bare cancellation.
    /// </summary>
    public static T RunWithin<T>(Func<CancellationToken, Task<T>> call, TimeSpan deadline, string what)
    {
        using var cancel = new CancellationTokenSource(deadline);
        try { return Run(call, cancel.Token).GetAwaiter().GetResult(); }
        catch (OperationCanceledException e)
        {
            throw new ObjectStoreException($"{what}: the store did not answer within {deadline.TotalSeconds:0} s", unreachable: true, transient: false, e);
        }
    }

    /// <summary><see cref="RunWithin{T}"/> for a call without a result.</summary>
    public static void RunWithin(Func<CancellationToken, Task> call, TimeSpan deadline, string what) =>
        RunWithin(async c => { await call(c).ConfigureAwait(false); return true; }, deadline, what);
}
