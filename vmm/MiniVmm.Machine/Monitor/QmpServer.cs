using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine.Snapshots;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// A QMP monitor on a Unix socket (QEMU's `-qmp unix:PATH,server,nowait`). It serves one client at a time: a second
/// one gets an error line saying so and is closed, and the first keeps its session. Sockets are served by .NET's
/// socket engine on the thread pool; only command execution goes to the main loop (<see cref="MainLoop.Post"/>), so
/// a client can never block the VM. Events (STOP, RESUME, SHUTDOWN, MIGRATION) go to a client that has negotiated.
/// </summary>
public sealed class QmpServer : IDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);
    private readonly Vm _vm;
    private readonly ILogger _log;
    private readonly Socket _listener;
    private readonly object _gate = new();
    private readonly CancellationTokenSource _closing = new();
    private QmpSession? _session;
    private string _shutdownReason = "guest-shutdown";
    private int _disposed;

    private QmpServer(Vm vm, SnapshotController controller, Socket listener, string path, ILoggerFactory loggers)
    {
        _vm = vm;
        _log = loggers.CreateLogger("MiniVmm.Qmp");
        _listener = listener;
        SocketPath = path;
        Commands = new QmpCommands(vm, controller, Emit, StopVm);
        vm.ShuttingDown += OnShuttingDown;
    }

    /// <summary>Listens on <paramref name="path"/> (0600). Throws IOException/SocketException when it cannot.</summary>
    public static QmpServer Start(Vm vm, SnapshotController controller, string path, ILoggerFactory loggers)
    {
        var listener = QmpSocket.Listen(path);
        var server = new QmpServer(vm, controller, listener, Path.GetFullPath(path), loggers);
        _ = Task.Run(server.AcceptLoopAsync);
        server._log.LogInformation("QMP monitor listening on {Path}", server.SocketPath);
        return server;
    }

    public string SocketPath { get; }

    internal QmpCommands Commands { get; }

    /// <summary>True when the VM stopped because a client sent `quit` (QEMU exits 0 then).</summary>
    public bool QuitRequested { get; private set; }

    private async Task AcceptLoopAsync()
    {
        while (!_closing.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_closing.Token).ConfigureAwait(false); }
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
                if (_session is null && !_vm.IsStopping) _session = session = new QmpSession(client, this, _log);
            }
            if (session is null) _ = RefuseAsync(client);
            else _ = session.RunAsync();
        }
    }

    /// <summary>A second client learns why it gets nothing, instead of waiting on a greeting that never comes.</summary>
    private async Task RefuseAsync(Socket client)
    {
        string why = _vm.IsStopping ? "the VM is shutting down" : "another QMP client is connected; MiniVmm serves one QMP client at a time";
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
        lock (_gate)
        {
            if (_session == session) _session = null;
        }
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

    /// <summary>Sends an event to the client, if one has negotiated. Called on the main loop.</summary>
    private void Emit(string name, JsonObject? data)
    {
        QmpSession? session;
        lock (_gate) session = _session;
        if (session is { Negotiated: true }) session.Send(QmpMessages.Event(name, data, DateTimeOffset.UtcNow));
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
        QmpSession? session;
        lock (_gate) session = _session;
        session?.FlushAndClose(TimeSpan.FromMilliseconds(500));
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _vm.ShuttingDown -= OnShuttingDown;
        _closing.Cancel();
        _listener.Dispose();
        QmpSession? session;
        lock (_gate) session = _session;
        session?.Abort();
        try { File.Delete(SocketPath); } catch (IOException) { }
    }
}
