using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using MiniVmm.Machine.Monitor;

using MiniVmm.Qmp;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// A raw QMP client over a real Unix socket for the monitor tests: it sends exactly the bytes a test gives it (so
/// malformed input reaches the server as is), and separates replies from events.
/// </summary>
public sealed class QmpTestClient : IDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly QmpFramer _framer = new();
    private readonly Queue<JsonObject> _pending = new();
    private readonly byte[] _buffer = new byte[64 * 1024];

    public QmpTestClient(string path)
    {
        _socket.Connect(new UnixDomainSocketEndPoint(path));
        _socket.ReceiveTimeout = (int)DefaultTimeout.TotalMilliseconds;
    }

    public List<JsonObject> Events { get; } = new();

    /// <summary>Connects, checks the greeting and negotiates capabilities.</summary>
    public static QmpTestClient Negotiated(string path)
    {
        var client = new QmpTestClient(path);
        client.Read()["QMP"].Should().NotBeNull("the server greets first");
        client.Command("qmp_capabilities").Should().ContainKey("return");
        return client;
    }

    public void SendRaw(string text) => _socket.Send(Encoding.UTF8.GetBytes(text));

    public void SendRaw(byte[] bytes) => _socket.Send(bytes);

    /// <summary>The next message of any kind; null when the server closed the connection.</summary>
    public JsonObject? TryRead()
    {
        while (_pending.Count == 0)
        {
            int n;
            try { n = _socket.Receive(_buffer); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { return null; }
            if (n == 0) return null;
            foreach (var frame in _framer.Feed(_buffer.AsSpan(0, n)))
                _pending.Enqueue(JsonNode.Parse(frame.Text!)!.AsObject());
        }
        return _pending.Dequeue();
    }

    public JsonObject Read() => TryRead() ?? throw new IOException("the QMP server closed the connection");

    /// <summary>The next reply (return or error), keeping events aside.</summary>
    public JsonObject ReadReply()
    {
        while (true)
        {
            var message = Read();
            if (message.ContainsKey("event")) { Events.Add(message); continue; }
            return message;
        }
    }

    public JsonObject Command(string name, JsonObject? arguments = null, JsonNode? id = null)
    {
        var request = new JsonObject { ["execute"] = name };
        if (arguments is not null) request["arguments"] = arguments;
        if (id is not null) request["id"] = id;
        SendRaw(request.ToJsonString() + "\n");
        return ReadReply();
    }

    /// <summary>Runs a command that must succeed and returns its `return` value.</summary>
    public JsonNode Return(string name, JsonObject? arguments = null)
    {
        var reply = Command(name, arguments);
        reply.Should().ContainKey("return", $"{name} should succeed, got {reply.ToJsonString()}");
        return reply["return"]!;
    }

    public string Hmp(string line) => Return("human-monitor-command", new JsonObject { ["command-line"] = line }).GetValue<string>();

    /// <summary>Waits for an event by name, reading (and keeping) whatever else arrives.</summary>
    public JsonObject WaitForEvent(string name, Func<JsonObject, bool>? match = null)
    {
        var seen = Events.FirstOrDefault(e => (string?)e["event"] == name && (match?.Invoke(e) ?? true));
        if (seen is not null) return seen;
        while (true)
        {
            var message = Read();
            if (!message.ContainsKey("event")) continue;
            Events.Add(message);
            if ((string?)message["event"] == name && (match?.Invoke(message) ?? true)) return message;
        }
    }

    /// <summary>Polls query-migrate until the snapshot ends; returns the final reply.</summary>
    public JsonObject WaitForMigration(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(2));
        while (true)
        {
            var info = Return("query-migrate").AsObject();
            if ((string?)info["status"] is "completed" or "failed" or "cancelled") return info;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("snapshot did not end: " + info.ToJsonString());
            Thread.Sleep(20);
        }
    }

    public static string ErrorClass(JsonObject reply) => (string)reply["error"]!["class"]!;

    public void Dispose() => _socket.Dispose();
}
