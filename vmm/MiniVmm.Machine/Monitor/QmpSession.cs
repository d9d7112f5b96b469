using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

using MiniVmm.Qmp;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// One QMP client connection. Reading, parsing and replying happen on thread-pool tasks, never on the main loop: a
/// slow or stuck client can only stall itself. Commands run one at a time, in order, on the main loop; the reply is
/// queued from there, so replies and the events a command causes reach the client in the order they happened.
/// Output goes through a bounded queue; a client that stops reading is dropped rather than buffered without limit.
/// </summary>
internal sealed class QmpSession
{
    private const int MaxQueuedMessages = 4096;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);

    private readonly Socket _socket;
    private readonly QmpServer _server;
    private readonly ILogger _log;
    private readonly Channel<string> _out = Channel.CreateBounded<string>(new BoundedChannelOptions(MaxQueuedMessages) { SingleReader = true });
    private readonly QmpFramer _framer = new();
    private Task _writer = Task.CompletedTask;
    private volatile bool _negotiated;

    public QmpSession(Socket socket, QmpServer server, ILogger log)
    {
        _socket = socket;
        _server = server;
        _log = log;
    }

    /// <summary>True once `qmp_capabilities` succeeded: commands are accepted and events are sent.</summary>
    public bool Negotiated => _negotiated;

    public async Task RunAsync()
    {
        _writer = Task.Run(WriteLoopAsync);
        Send(QmpMessages.Greeting());
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await _socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).ConfigureAwait(false);
                if (n == 0) break;
                foreach (var frame in _framer.Feed(buffer.AsSpan(0, n)))
                {
                    if (frame.Error is { } error) Send(QmpMessages.Error(QmpErrorClass.GenericError, error, null));
                    else await HandleAsync(frame.Text!).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            _log.LogDebug("QMP client connection ended: {Error}", e.Message);
        }
        finally
        {
            _out.Writer.TryComplete();
            await Task.WhenAny(_writer, Task.Delay(1000)).ConfigureAwait(false);
            _socket.Dispose();
            _server.OnSessionEnded(this);
        }
    }

    /// <summary>Queues a message; safe from any thread. Drops the client when its queue is full (logged once).</summary>
    public void Send(string message)
    {
        if (_out.Writer.TryWrite(message)) return;
        // The queue stays full after it is closed (nobody reads it), so every later message lands here: warn once.
        if (Interlocked.Exchange(ref _droppedForNotReading, 1) != 0) return;
        _log.LogWarning("QMP client does not read its replies ({Count} queued); disconnecting it", MaxQueuedMessages);
        Abort();
    }

    private int _droppedForNotReading;
    private int _badRequestsLogged;

    /// <summary>Bad client input is logged without a stack trace, and only the first few times per session.</summary>
    private void LogBadRequest(string what, string text)
    {
        int n = Interlocked.Increment(ref _badRequestsLogged);
        if (n <= 5)
            _log.LogWarning("QMP request not understood ({What}): {Request}{More}", what, text.Length > 200 ? text[..200] : text,
                n == 5 ? " (further bad requests of this client are not logged)" : "");
    }

    /// <summary>Sends what is queued (bounded by <paramref name="timeout"/>) and closes: the VM is going away.</summary>
    public void FlushAndClose(TimeSpan timeout)
    {
        _out.Writer.TryComplete();
        _writer.Wait(timeout);
        Abort();
    }

    public void Abort()
    {
        _out.Writer.TryComplete();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await foreach (string message in _out.Reader.ReadAllAsync().ConfigureAwait(false))
                await _socket.SendAsync(Encoding.UTF8.GetBytes(message + "\r\n").AsMemory(), SocketFlags.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            _log.LogDebug("QMP client went away while we wrote to it: {Error}", e.Message);
            Abort();
        }
    }

    private async Task HandleAsync(string text)
    {
        JsonNode? id = null;
        try
        {
            var (command, args, requestId) = ParseRequest(text, out id);
            if (!_negotiated)
            {
                if (args.Array("enable") is { Count: > 0 } wanted)
                    throw QmpException.Generic($"Capability '{wanted[0]}' not available");
                _negotiated = true;
                Send(QmpMessages.Return(null, requestId));
                return;
            }
            await _server.ExecuteOnLoopAsync(this, command, args, requestId).ConfigureAwait(false);
        }
        catch (QmpException e)
        {
            Send(QmpMessages.Error(e.ErrorClass, e.Message, id));
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or JsonException)
        {
            // A request this code did not foresee must not end the session (nor touch the VM): report it.
            LogBadRequest(e.Message, text);
            string reply;
            try { reply = QmpMessages.Error(QmpErrorClass.GenericError, "the request could not be handled: " + e.Message, id); }
            catch (Exception) { reply = QmpMessages.Error(QmpErrorClass.GenericError, "the request could not be handled: " + e.Message, null); }
            Send(reply);
        }
    }

    /// <summary>
    /// Refuses string values that are not valid UTF-16 once unescaped (a lone surrogate such as "\ud800"): the
    /// parser accepts them and only reading the value fails, which would otherwise surface deep in a command.
    /// </summary>
    private static void RequireValidStrings(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                // Member names were unescaped (and so checked) by the parse itself: it rejects duplicates.
                foreach (var (_, value) in o) RequireValidStrings(value);
                break;
            case JsonArray a:
                foreach (var item in a) RequireValidStrings(item);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                try { _ = v.GetValue<string>(); }
                catch (InvalidOperationException) { throw QmpException.Generic("JSON parse error, invalid UTF-16 escape in a string"); }
                break;
        }
    }

    /// <summary>Checks a request's shape as QEMU does; <paramref name="id"/> is set as soon as it is known, so errors echo it.</summary>
    private (QmpCommands.Command, QmpArguments, JsonNode?) ParseRequest(string text, out JsonNode? id)
    {
        id = null;
        JsonNode? node;
        try { node = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false }); }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            throw QmpException.Generic("JSON parse error, " + e.Message);
        }
        if (node is not JsonObject request) throw QmpException.Generic("QMP input must be a JSON object");
        RequireValidStrings(request);
        id = request["id"];
        foreach (var (key, _) in request)
            if (key is not ("execute" or "arguments" or "id"))
                throw QmpException.Generic(key == "exec-oob"
                    ? "Out-of-band execution is not available: the greeting offers no 'oob' capability"
                    : $"QMP input member '{key}' is unexpected");
        if (!request.TryGetPropertyValue("execute", out var execute) || execute is null)
            throw QmpException.Generic("QMP input lacks member 'execute'");
        if (execute.GetValueKind() != JsonValueKind.String) throw QmpException.Generic("QMP input member 'execute' must be a string");
        var argsNode = request["arguments"];
        if (argsNode is not null && argsNode.GetValueKind() != JsonValueKind.Object)
            throw QmpException.Generic("QMP input member 'arguments' must be an object");
        string name = execute.GetValue<string>();
        if (!_negotiated && name != "qmp_capabilities")
            throw new QmpException(QmpErrorClass.CommandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'");
        if (!_server.Commands.TryGet(name, out var command))
            throw new QmpException(QmpErrorClass.CommandNotFound, $"The command {name} has not been found");
        return (command, QmpArguments.Check(argsNode as JsonObject, command.Schema), id);
    }
}
