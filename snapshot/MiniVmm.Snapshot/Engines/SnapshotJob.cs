namespace MiniVmm.Snapshot.Engines;

/// <summary>A snapshot in progress: its completion, live progress and cancellation.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001",
    Justification = "a CancellationTokenSource without a timer holds nothing to release, and Cancel may come after the job ended")]
public sealed class SnapshotJob
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly TaskCompletionSource<SnapshotResult> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SnapshotJob(string engine, long totalPages)
    {
        Engine = engine;
        TotalPages = totalPages;
    }

    public string Engine { get; }
    public long TotalPages { get; }
    public Task<SnapshotResult> Completion => _done.Task;
    public CancellationToken CancellationToken => _cancel.Token;

    /// <summary>Pages whose content has been saved (zero or not); updated by the engine.</summary>
    public Func<long> PagesDone { get; set; } = () => 0;
    public Func<long> FaultsServed { get; set; } = () => 0;
    public Func<long> BytesWritten { get; set; } = () => 0;

    /// <summary>Asks the engine to stop: it un-protects everything, removes the partial output, and the VM runs on.</summary>
    public void Cancel() => _cancel.Cancel();

    private readonly object _gate = new();
    private Action<SnapshotResult>? _whenFinished;
    private SnapshotResult? _result;

    /// <summary>
    /// Runs <paramref name="callback"/> on the engine's thread as soon as the job ends (at once if it already has).
    /// Unlike a continuation on <see cref="Completion"/>, it does not wait for a thread-pool thread, which on a busy
    /// 2-core host can take a second: keep it short and non-blocking (post to a loop).
    /// </summary>
    public void WhenFinished(Action<SnapshotResult> callback)
    {
        SnapshotResult? done;
        lock (_gate)
        {
            done = _result;
            if (done is null) _whenFinished += callback;
        }
        if (done is not null) callback(done);
    }

    internal void Finish(SnapshotResult result)
    {
        Action<SnapshotResult>? callbacks;
        lock (_gate)
        {
            if (_result is not null) return;
            _result = result;
            callbacks = _whenFinished;
            _whenFinished = null;
        }
        callbacks?.Invoke(result);
        _done.TrySetResult(result);
    }
}
