using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniVmm.Machine.Monitor;

public enum QmpType { String, Bool, Int, Array, Object, Any }

/// <summary>One parameter of a command's schema.</summary>
public sealed record QmpParameter(string Name, QmpType Type, bool Required = false);

/// <summary>
/// A command's arguments, checked against its schema before the handler runs, with QEMU's wording for the errors
/// (scripts match on them): unexpected, missing and wrongly typed parameters are GenericErrors.
/// </summary>
public sealed class QmpArguments
{
    private readonly JsonObject _args;

    private QmpArguments(JsonObject args) => _args = args;

    public static QmpArguments Empty { get; } = new(new JsonObject());

    /// <param name="path">where the object sits in the request, for nested ones ("capabilities[0].")</param>
    public static QmpArguments Check(JsonObject? args, IReadOnlyList<QmpParameter> schema, string path = "")
    {
        args ??= new JsonObject();
        foreach (var (name, _) in args)
            if (!schema.Any(p => p.Name == name)) throw QmpException.Generic($"Parameter '{path}{name}' is unexpected");
        foreach (var p in schema)
        {
            if (!args.TryGetPropertyValue(p.Name, out var value) || value is null)
            {
                if (p.Required) throw QmpException.Generic($"Parameter '{path}{p.Name}' is missing");
                continue;
            }
            CheckType(path + p.Name, value, p.Type);
        }
        return new QmpArguments(args);
    }

    /// <summary>Throws QEMU's "Invalid parameter type" error unless <paramref name="value"/> has <paramref name="type"/>.</summary>
    public static void CheckType(string name, JsonNode? value, QmpType type)
    {
        var kind = value?.GetValueKind() ?? JsonValueKind.Null;
        bool ok = type switch
        {
            QmpType.String => kind == JsonValueKind.String,
            QmpType.Bool => kind is JsonValueKind.True or JsonValueKind.False,
            QmpType.Int => kind == JsonValueKind.Number && value!.AsValue().TryGetValue<long>(out _),
            QmpType.Array => kind == JsonValueKind.Array,
            QmpType.Object => kind == JsonValueKind.Object,
            _ => true,
        };
        if (!ok) throw QmpException.Generic($"Invalid parameter type for '{name}', expected: {TypeName(type)}");
    }

    private static string TypeName(QmpType type) => type switch
    {
        QmpType.String => "string",
        QmpType.Bool => "boolean",
        QmpType.Int => "integer",
        QmpType.Array => "array",
        QmpType.Object => "object",
        _ => "any",
    };

    public bool Has(string name) => _args.TryGetPropertyValue(name, out var v) && v is not null;

    public string? String(string name) => Has(name) ? _args[name]!.GetValue<string>() : null;

    public bool? Bool(string name) => Has(name) ? _args[name]!.GetValue<bool>() : null;

    public long? Int(string name) => Has(name) ? _args[name]!.AsValue().GetValue<long>() : null;

    public JsonArray? Array(string name) => Has(name) ? _args[name]!.AsArray() : null;

    public JsonObject? Object(string name) => Has(name) ? _args[name]!.AsObject() : null;
}
