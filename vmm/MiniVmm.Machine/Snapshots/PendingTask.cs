namespace MiniVmm.Machine.Snapshots;

/// <summary>Work a stopping VM waits for (at most <paramref name="wait"/>) before it goes: a working set on its way to the store.</summary>
internal sealed class PendingTask(TimeSpan wait) : IDisposable
{
    public Task? Task { get; set; }

    public void Dispose()
    {
        try { Task?.Wait(wait); }
        catch (AggregateException) { } // the task reports its own failure
    }
}
