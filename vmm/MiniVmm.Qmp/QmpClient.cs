using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Qmp;

/// <summary>The error reply of a QMP command, as the client sees it.</summary>
public sealed class QmpCommandException(string errorClass, string description) : Exception(description)
{
    public string ErrorClass { get; } = errorClass;
}

/// <summary>
/// A small synchronous QMP client for `minivmm snapshot --qmp` and `minivmm monitor`: connects, negotiates, runs one
/// command at a time. A reader thread separates replies from events, which go to <see cref="EventReceived"/>. It
/// speaks to QEMU as well as to MiniVmm.
/// </summary>
public sealed class QmpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly BlockingCollection<JsonObject> _replies = new();
    private readonly Thread _reader;
    private int _nextId;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _reader = new Thread(ReadLoop) { Name = "qmp-client", IsBackground = true };
    }

    public JsonObject Greeting { get; private set; } = new();

    /// <summary>True when the server is MiniVmm (it then understands the x-minivmm parameters).</summary>
    public bool IsMiniVmm => Greeting["QMP"]?["version"]?["package"]?.GetValue<string>().StartsWith("MiniVmm", StringComparison.Ordinal) == true;

    /// <summary>Raised on the reader thread for each asynchronous event.</summary>
    public event Action<JsonObject>? EventReceived;

    /// <summary>
    /// Connects for a CLI command: <paramref name="spec"/> is unix:PATH[,flags] or PATH. False with a message for the
    /// user when no socket is there or the monitor does not answer.
    /// </summary>
    public static bool TryOpen(string spec, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out QmpClient? client, out string path,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        client = null;
        error = null;
        path = spec.StartsWith("unix:", StringComparison.Ordinal) ? spec[5..].Split(',')[0] : spec;
        if (!File.Exists(path))
        {
            error = $"no QMP socket at '{path}' (is the VM running with --qmp?)";
            return false;
        }
        try
        {
            client = Connect(path, TimeSpan.FromSeconds(5));
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            error = $"cannot talk to the QMP monitor at '{path}': {e.Message}";
            return false;
        }
    }

    public static QmpClient Connect(string path, TimeSpan timeout)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var client = new QmpClient(socket);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            client._reader.Start();
            if (!client._replies.TryTake(out var greeting, timeout)) throw new IOException("no QMP greeting from " + path);
            if (greeting["error"] is { } refused) throw new IOException($"{path}: {refused["desc"]}");
            if (greeting["QMP"] is null) throw new IOException($"{path} does not speak QMP (got {greeting.ToJsonString()})");
            client.Greeting = greeting;
            client.Execute("qmp_capabilities");
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Runs a command and returns its `return` value; an error reply throws <see cref="QmpCommandException"/>.</summary>
    public JsonNode? Execute(string name, JsonObject? arguments = null, TimeSpan? timeout = null)
    {
        string id = "minivmm-" + Interlocked.Increment(ref _nextId);
        var request = new JsonObject { ["execute"] = name, ["id"] = id };
        if (arguments is not null) request["arguments"] = arguments;
        Send(request.ToJsonString());
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !_replies.TryTake(out var reply, left))
                throw new IOException($"no reply to {name} (the monitor closed or is not answering)");
            if (reply["id"]?.GetValueKind() == JsonValueKind.String && reply["id"]!.GetValue<string>() != id) continue; // a late reply
            if (reply["error"] is { } error)
                throw new QmpCommandException(error["class"]?.GetValue<string>() ?? "GenericError", error["desc"]?.GetValue<string>() ?? error.ToJsonString());
            return reply["return"];
        }
    }

    /// <summary>Sends raw text (the interactive monitor passes JSON through) and returns the next reply.</summary>
    public JsonObject ExecuteRaw(string json, TimeSpan timeout)
    {
        Send(json);
        if (!_replies.TryTake(out var reply, timeout)) throw new IOException("no reply (the monitor closed or is not answering)");
        return reply;
    }

    private void Send(string json) => _socket.Send(Encoding.UTF8.GetBytes(json + "\n"));

    private void ReadLoop()
    {
        var framer = new QmpFramer();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = _socket.Receive(buffer);
                if (n == 0) break;
                foreach (var frame in framer.Feed(buffer.AsSpan(0, n)))
                {
                    if (frame.Text is null || JsonNode.Parse(frame.Text) is not JsonObject message) continue;
                    if (message.ContainsKey("event")) EventReceived?.Invoke(message);
                    else _replies.Add(message);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or JsonException or InvalidOperationException) { }
        finally { _replies.CompleteAdding(); }
    }

    public void Dispose()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
    }
}
