namespace MiniVmm.Snapshot.Engines;

/// <summary>A snapshot in progress: its completion, live progress and cancellation.</summary>
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

    internal void Finish(SnapshotResult result) => _done.TrySetResult(result);
}
