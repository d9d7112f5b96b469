using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Qmp;

/// <summary>The four kinds of message a QMP server sends: greeting, success, error and event (QMP spec §2.2–2.5).</summary>
public static class QmpMessages
{
    /// <summary>
    /// The QEMU version MiniVmm answers with. Scripts gate features on it (background-snapshot needs ≥ 6.0), and the
    /// command set and replies follow QEMU 7.2's, the release these were checked against.
    /// </summary>
    public const int QemuMajor = 7, QemuMinor = 2, QemuMicro = 0;

    /// <summary>Quotes and non-ASCII text stay readable in replies (QEMU does not escape them either).</summary>
    private static readonly JsonSerializerOptions Output = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Package => "MiniVmm " + (typeof(QmpMessages).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    public static JsonObject Version() => new()
    {
        ["qemu"] = new JsonObject { ["micro"] = QemuMicro, ["minor"] = QemuMinor, ["major"] = QemuMajor },
        ["package"] = Package,
    };

    /// <summary>No capabilities offered: out-of-band execution is not supported.</summary>
    public static string Greeting() => new JsonObject
    {
        ["QMP"] = new JsonObject { ["version"] = Version(), ["capabilities"] = new JsonArray() },
    }.ToJsonString(Output);

    public static string Return(JsonNode? value, JsonNode? id)
    {
        var reply = new JsonObject { ["return"] = value ?? new JsonObject() };
        if (id is not null) reply["id"] = id.DeepClone();
        return reply.ToJsonString(Output);
    }

    public static string Error(string errorClass, string description, JsonNode? id)
    {
        var reply = new JsonObject { ["error"] = new JsonObject { ["class"] = errorClass, ["desc"] = description } };
        if (id is not null) reply["id"] = id.DeepClone();
        return reply.ToJsonString(Output);
    }

    public static string Event(string name, JsonObject? data, DateTimeOffset when)
    {
        long us = (when.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;
        var message = new JsonObject { ["event"] = name };
        if (data is not null) message["data"] = data;
        message["timestamp"] = new JsonObject { ["seconds"] = us / 1_000_000, ["microseconds"] = us % 1_000_000 };
        return message.ToJsonString(Output);
    }
}
