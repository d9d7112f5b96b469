using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine.Snapshots;

using MiniVmm.Qmp;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// A QMP monitor on one or more Unix sockets (QEMU's `-qmp unix:PATH,server,nowait`, given several times). Every
/// socket takes several clients at once (up to <see cref="MaxClients"/> in all); each has its own session, and
/// events (STOP, RESUME, SHUTDOWN, MIGRATION) go to every client that has negotiated, so an interactive monitor and
/// a scripted snapshot can share one VM. They share one command set: migration settings and the snapshot in progress
/// are the VM's, as in QEMU. Sockets are served by .NET's socket engine on the thread pool; only command execution
/// goes to the main loop (<see cref="MainLoop.Post"/>), so a client can never block the VM.
/// </summary>
public sealed class QmpServer : IDisposable
{
    /// <summary>Clients served at once over all sockets; one more gets an error line and is closed.</summary>
    public const int MaxClients = 16;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);
    private readonly Vm _vm;
    private readonly ILogger _log;
    private readonly List<(Socket Listener, string Path, ManualResetEventSlim ClientSeen)> _listeners = new();
    private readonly object _gate = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly List<QmpSession> _sessions = new();
    private string _shutdownReason = "guest-shutdown";
    private int _disposed;

    private QmpServer(Vm vm, SnapshotController controller, ILoggerFactory loggers)
    {
        _vm = vm;
        _log = loggers.CreateLogger("MiniVmm.Qmp");
        Commands = new QmpCommands(vm, controller, Emit, StopVm);
        vm.ShuttingDown += OnShuttingDown;
    }

    /// <summary>Listens on <paramref name="path"/> (0600). Throws IOException/SocketException when it cannot.</summary>
    public static QmpServer Start(Vm vm, SnapshotController controller, string path, ILoggerFactory loggers) =>
        Start(vm, controller, [path], loggers);

    /// <summary>Listens on every path (0600 each). Throws IOException/SocketException when one cannot be created.</summary>
    public static QmpServer Start(Vm vm, SnapshotController controller, IReadOnlyList<string> paths, ILoggerFactory loggers)
    {
        if (paths.Count == 0) throw new ArgumentException("no QMP socket path", nameof(paths));
        var server = new QmpServer(vm, controller, loggers);
        try
        {
            foreach (string path in paths)
            {
                string full = Path.GetFullPath(path);
                if (server._listeners.Any(l => l.Path == full)) throw new IOException($"QMP socket '{full}' is given twice");
                server._listeners.Add((QmpSocket.Listen(path), full, new ManualResetEventSlim()));
            }
        }
        catch
        {
            server.Dispose();
            throw;
        }
        foreach (var (listener, full, seen) in server._listeners)
        {
            _ = Task.Run(() => server.AcceptLoopAsync(listener, seen));
            server._log.LogInformation("QMP monitor listening on {Path}", full);
        }
        return server;
    }

    /// <summary>The first socket's full path.</summary>
    public string SocketPath => _listeners[0].Path;

    public IReadOnlyList<string> SocketPaths => _listeners.Select(l => l.Path).ToList();

    internal QmpCommands Commands { get; }

    /// <summary>True when the VM stopped because a client sent `quit` (QEMU exits 0 then).</summary>
    public bool QuitRequested { get; private set; }

    /// <summary>
    /// QEMU's `server,wait`: blocks until a client has connected to each of <paramref name="paths"/> (sockets of this
    /// server; a client of another socket does not count, as in QEMU, where each waiting socket holds the start until
    /// its own client comes), or <paramref name="cancel"/> fires. True when all did.
    /// </summary>
    public bool WaitForClients(IEnumerable<string> paths, CancellationToken cancel)
    {
        foreach (string path in paths)
        {
            string full = Path.GetFullPath(path);
            var seen = _listeners.FirstOrDefault(l => l.Path == full).ClientSeen
                ?? throw new ArgumentException($"'{full}' is not a socket of this monitor", nameof(paths));
            try { seen.Wait(cancel); }
            catch (OperationCanceledException) { return false; }
        }
        return true;
    }

    private async Task AcceptLoopAsync(Socket listener, ManualResetEventSlim clientSeen)
    {
        while (!_closing.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(_closing.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_closing.IsCancellationRequested) return;
                _log.LogWarning("QMP accept failed: {Error}", e.Message);
                await Task.Delay(100).ConfigureAwait(false);
                continue;
            }
            QmpSession? session = null;
            lock (_gate)
            {
                if (_sessions.Count < MaxClients && !_vm.IsStopping) _sessions.Add(session = new QmpSession(client, this, _log));
            }
            if (session is null) _ = RefuseAsync(client);
            else
            {
                clientSeen.Set();
                _ = session.RunAsync();
            }
        }
    }

    /// <summary>A client over the limit learns why it gets nothing, instead of waiting on a greeting that never comes.</summary>
    private async Task RefuseAsync(Socket client)
    {
        string why = _vm.IsStopping ? "the VM is shutting down" : $"{MaxClients} QMP clients are connected, the most MiniVmm serves at once";
        _log.LogInformation("refused a QMP client: {Reason}", why);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            byte[] line = Encoding.UTF8.GetBytes(QmpMessages.Error(QmpErrorClass.GenericError, why, null) + "\r\n");
            await client.SendAsync(line.AsMemory(), SocketFlags.None, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
        finally { client.Dispose(); }
    }

    internal void OnSessionEnded(QmpSession session)
    {
        lock (_gate) _sessions.Remove(session);
    }

    /// <summary>Runs a command on the main loop and queues its reply from there; gives up (with an error) after a bound.</summary>
    internal async Task ExecuteOnLoopAsync(QmpSession session, QmpCommands.Command command, QmpArguments args, JsonNode? id)
    {
        if (_vm.IsStopping)
        {
            session.Send(QmpMessages.Error(QmpErrorClass.GenericError, "the VM is shutting down", id));
            return;
        }
        int replied = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _vm.Loop.Post(() =>
        {
            string reply;
            try { reply = QmpMessages.Return(command.Run(args), id); }
            catch (QmpException e) { reply = QmpMessages.Error(e.ErrorClass, e.Message, id); }
            catch (Exception e)
            {
                // A monitor bug must not take the VM down: report it to the client and the log.
                _log.LogError(e, "QMP command {Command} failed", command.Name);
                reply = QmpMessages.Error(QmpErrorClass.GenericError, $"internal error in {command.Name}: {e.Message}", id);
            }
            if (Interlocked.Exchange(ref replied, 1) == 0) session.Send(reply);
            done.TrySetResult();
        });
        if (await Task.WhenAny(done.Task, Task.Delay(CommandTimeout)).ConfigureAwait(false) != done.Task
            && Interlocked.Exchange(ref replied, 1) == 0)
            session.Send(QmpMessages.Error(QmpErrorClass.GenericError,
                $"{command.Name} did not run within {CommandTimeout.TotalSeconds:F0} s (the VM is busy or stopping)", id));
    }

    /// <summary>Sends an event to every client that has negotiated. Called on the main loop.</summary>
    private void Emit(string name, JsonObject? data)
    {
        string message = QmpMessages.Event(name, data, DateTimeOffset.UtcNow);
        foreach (var session in Sessions())
            if (session.Negotiated) session.Send(message);
    }

    private QmpSession[] Sessions()
    {
        lock (_gate) return _sessions.ToArray();
    }

    private void StopVm(VmExitStatus status)
    {
        if (!_vm.RequestStop(status)) return;
        if (status.Detail == QmpCommands.QuitDetail) { QuitRequested = true; _shutdownReason = "host-qmp-quit"; }
        else if (status.Reason == VmStopReason.Reset) _shutdownReason = "host-qmp-system-reset";
    }

    /// <summary>
    /// The VM is stopping: tell the client (SHUTDOWN) and let it read that before the socket goes. The reason is the
    /// monitor's own when it asked; otherwise "guest-shutdown" (the VM does not say which other cause it was).
    /// </summary>
    private void OnShuttingDown()
    {
        Emit("SHUTDOWN", new JsonObject { ["guest"] = _shutdownReason.StartsWith("guest", StringComparison.Ordinal), ["reason"] = _shutdownReason });
        var sessions = Sessions();
        // Flushed together: each gets the same bound, not one after the other.
        Task.WaitAll(sessions.Select(s => Task.Run(() => s.FlushAndClose(TimeSpan.FromMilliseconds(500)))).ToArray(), TimeSpan.FromSeconds(2));
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _vm.ShuttingDown -= OnShuttingDown;
        _closing.Cancel();
        foreach (var (listener, path, _) in _listeners)
        {
            listener.Dispose();
            try { File.Delete(path); } catch (IOException) { }
        }
        foreach (var session in Sessions()) session.Abort();
        // The ClientSeen events are not disposed: an accept loop may still be setting one as it ends (they hold no
        // kernel object until waited on, and the wait ended before Dispose).
    }
}
