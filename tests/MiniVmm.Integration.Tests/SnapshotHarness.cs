using System.Text;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Snapshot;

namespace MiniVmm.Integration.Tests;

/// <summary>Takes snapshots of a <see cref="GuestRun"/> the way the CLI does (on the main loop) and restores them.</summary>
public static class SnapshotHarness
{
    public static SnapshotResult Take(GuestRun run, string destination, SnapshotOptions options, Action<SnapshotController>? whileRunning = null)
    {
        var controller = new SnapshotController(run.Vm, GuestRun.Loggers);
        var done = new TaskCompletionSource<SnapshotResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        controller.Completed += r => done.TrySetResult(r);
        var started = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        run.Vm.Loop.Post(() => started.SetResult(controller.TryStart(destination, options, out string? error) ? null : error ?? "failed"));
        if (!started.Task.Wait(TimeSpan.FromSeconds(30))) throw new TimeoutException("snapshot did not start");
        if (started.Task.Result is { } startError)
            return new SnapshotResult { Engine = options.Mode.ToString(), Succeeded = false, Error = startError };
        whileRunning?.Invoke(controller);
        if (!done.Task.Wait(TimeSpan.FromSeconds(120))) throw new TimeoutException("snapshot did not finish");
        return done.Task.Result;
    }

    /// <summary>One chained snapshot through the VM's own controller, as SIGUSR1 or QMP would take it (an incremental link
    /// of the last one whenever the writes since were tracked).</summary>
    public static SnapshotResult TakeLink(GuestRun run, SnapshotController controller, string path, SnapshotOptions? options = null)
    {
        var done = new TaskCompletionSource<SnapshotResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnCompleted(SnapshotResult r) => done.TrySetResult(r);
        controller.Completed += OnCompleted;
        try
        {
            var started = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
            run.Vm.Loop.Post(() => started.SetResult(
                controller.TryStart(path, options ?? new SnapshotOptions(), out string? error, chain: true) ? null : error ?? "failed"));
            started.Task.Wait(TimeSpan.FromSeconds(30)).Should().BeTrue("the snapshot must start");
            started.Task.Result.Should().BeNull();
            done.Task.Wait(TimeSpan.FromSeconds(120)).Should().BeTrue("the snapshot must finish");
            return done.Task.Result;
        }
        finally { controller.Completed -= OnCompleted; }
    }

    public static (GuestRun Run, Func<string> Serial) Restore(string path, bool start = true, RestoreOptions? options = null)
    {
        var serial = new StringBuilder();
        var vm = VmRestore.Restore(path, (options ?? new RestoreOptions()) with
        {
            Serial = new SerialTarget.Callback(b => { lock (serial) serial.Append(Encoding.ASCII.GetString(b.Span)); }),
        }, GuestRun.Loggers);
        var run = new GuestRun(vm);
        if (start) run.Start();
        return (run, () => { lock (serial) return serial.ToString(); });
    }
}
