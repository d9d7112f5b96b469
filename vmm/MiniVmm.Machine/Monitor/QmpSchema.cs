using System.Text.Json.Nodes;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// `query-qmp-schema`: QEMU's introspection format (SchemaInfo entries) built from the command table itself, so it
/// can never disagree with what the monitor accepts: one `command` entry per command, an `object` entry for its
/// arguments (optional members carry `default: null`, as QEMU marks them), the events, and the builtin types used.
/// Argument types of nested objects and arrays are given as `any`: MiniVmm checks those members in the handler.
/// </summary>
internal static class QmpSchema
{
    public static JsonArray Describe(IEnumerable<QmpCommands.Command> commands, IEnumerable<string> events)
    {
        var list = new JsonArray();
        foreach (var c in commands.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            string argType = c.Name + "-arg";
            list.Add((JsonNode)new JsonObject
            {
                ["name"] = c.Name, ["meta-type"] = "command", ["arg-type"] = argType, ["ret-type"] = "any", ["allow-oob"] = false,
            });
            var members = new JsonArray();
            foreach (var p in c.Schema)
            {
                var m = new JsonObject { ["name"] = p.Name, ["type"] = TypeName(p.Type) };
                if (!p.Required) m["default"] = null;
                members.Add((JsonNode)m);
            }
            list.Add((JsonNode)new JsonObject { ["name"] = argType, ["meta-type"] = "object", ["members"] = members });
        }
        foreach (string e in events)
            list.Add((JsonNode)new JsonObject { ["name"] = e, ["meta-type"] = "event", ["arg-type"] = "any" });
        foreach (var (name, json) in new[] { ("str", "string"), ("bool", "boolean"), ("int", "int"), ("any", "value") })
            list.Add((JsonNode)new JsonObject { ["name"] = name, ["meta-type"] = "builtin", ["json-type"] = json });
        return list;
    }

    private static string TypeName(QmpType t) => t switch
    {
        QmpType.String => "str",
        QmpType.Bool => "bool",
        QmpType.Int => "int",
        _ => "any",
    };
}
