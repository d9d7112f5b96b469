using System.Text.Json.Nodes;
using MiniVmm.Machine.Snapshots;

using MiniVmm.Qmp;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// The QMP command set: each command's schema and handler. Handlers run on the main loop (they change VM state, and
/// the main loop owns it) and return the `return` value or throw <see cref="QmpException"/>.
/// </summary>
public sealed class QmpCommands
{
    public sealed record Command(string Name, IReadOnlyList<QmpParameter> Schema, Func<QmpArguments, JsonNode?> Run);

    private readonly Dictionary<string, Command> _table = new(StringComparer.Ordinal);
    private readonly Vm _vm;
    private readonly VmRunState _runState;
    private readonly MigrationSettings _settings = new();
    private readonly MigrationTracker _migration;
    private readonly Action<string, JsonObject?> _emit;
    private readonly Action<VmExitStatus> _stop;

    /// <param name="emit">sends an event to the client (name, data)</param>
    /// <param name="stop">stops the VM for `quit` and `system_reset`, after the reply is queued</param>
    public QmpCommands(Vm vm, SnapshotController controller, Action<string, JsonObject?> emit, Action<VmExitStatus> stop)
    {
        _vm = vm;
        _runState = controller.RunState;
        _emit = emit;
        _stop = stop;
        _migration = new MigrationTracker(controller, _settings, emit);
        var hmp = new HmpCommands(this);

        Add("qmp_capabilities", [new("enable", QmpType.Array)], _ => throw new QmpException(QmpErrorClass.CommandNotFound,
            "Capabilities negotiation is already complete, command ignored"));
        Add("query-version", [], _ => QmpMessages.Version());
        Add("query-commands", [], _ => new JsonArray(_table.Keys.Order().Select(n => (JsonNode)new JsonObject { ["name"] = n }).ToArray()));
        Add("query-name", [], _ => new JsonObject());
        Add("query-qmp-schema", [], _ => QmpSchema.Describe(_table.Values, QmpServerEvents));
        Add("query-kvm", [], _ => new JsonObject { ["enabled"] = true, ["present"] = true });
        Add("query-status", [], _ => new JsonObject
        {
            ["status"] = _runState.Status,
            ["singlestep"] = false,
            ["running"] = _runState.Status is "running" or "finish-migrate",
        });
        Add("query-cpus-fast", [], _ => QueryCpus());
        Add("stop", [], _ => Stop());
        Add("cont", [], _ => Continue());
        Add("system_reset", [], _ => Reset());
        Add("quit", [], _ => Quit());
        Add("migrate-set-capabilities", [new("capabilities", QmpType.Array, Required: true)], a =>
        {
            RefuseWhileMigrating();
            _settings.SetCapabilities(a.Array("capabilities")!);
            return null;
        });
        Add("query-migrate-capabilities", [], _ => _settings.QueryCapabilities());
        Add("migrate-set-parameters", MigrationSettings.ParameterSchema, a =>
        {
            RefuseWhileMigrating();
            _settings.SetParameters(a);
            return null;
        });
        Add("query-migrate-parameters", [], _ => _settings.QueryParameters());
        Add("migrate", [new("uri", QmpType.String, Required: true), new("detach", QmpType.Bool), new("blk", QmpType.Bool),
            new("inc", QmpType.Bool), new("resume", QmpType.Bool)], a =>
        {
            if (a.Bool("blk") == true || a.Bool("inc") == true) throw QmpException.Generic("MiniVmm has no block devices to migrate");
            if (a.Bool("resume") == true) throw QmpException.Generic("MiniVmm has no postcopy migration to resume");
            _migration.Start(a.String("uri")!);
            return null;
        });
        Add("query-migrate", [], _ => _migration.Query());
        Add("migrate_cancel", [], _ => { _migration.Cancel(); return null; });
        Add("human-monitor-command", [new("command-line", QmpType.String, Required: true), new("cpu-index", QmpType.Int)],
            a => hmp.Execute(a.String("command-line")!, a.Int("cpu-index") is { } c ? (int)Math.Clamp(c, -1, int.MaxValue) : 0));
    }

    internal Vm Vm => _vm;
    public MigrationTracker Migration => _migration;
    public MigrationSettings Settings => _settings;
    public VmRunState RunState => _runState;
    public IEnumerable<string> Names => _table.Keys;

    public bool TryGet(string name, out Command command) => _table.TryGetValue(name, out command!);

    /// <summary>Runs a command from inside another (HMP): checks arguments as a client's would be.</summary>
    public JsonNode? Invoke(string name, JsonObject? arguments = null)
    {
        if (!TryGet(name, out var command)) throw new QmpException(QmpErrorClass.CommandNotFound, $"The command {name} has not been found");
        return command.Run(QmpArguments.Check(arguments, command.Schema));
    }

    /// <summary>The events a client can receive (for query-qmp-schema).</summary>
    internal static readonly string[] QmpServerEvents = ["STOP", "RESUME", "SHUTDOWN", "MIGRATION"];

    private void Add(string name, IReadOnlyList<QmpParameter> schema, Func<QmpArguments, JsonNode?> run) =>
        _table[name] = new Command(name, schema, run);

    private void RefuseWhileMigrating()
    {
        if (_migration.IsActive) throw QmpException.Generic("There's a migration process in progress");
    }

    private JsonNode? Stop()
    {
        try
        {
            if (_runState.StopByUser()) _emit("STOP", null);
        }
        catch (TimeoutException e) { throw QmpException.Generic("cannot stop the VM: " + e.Message); }
        return null;
    }

    private JsonNode? Continue()
    {
        if (_runState.ContinueByUser()) _emit("RESUME", null);
        return null;
    }

    /// <summary>
    /// MiniVmm cannot reboot a guest. It does what QEMU does under -no-reboot (the command line both are compared
    /// with): the VM stops with the reset status (exit code 124) after a SHUTDOWN event.
    /// </summary>
    private JsonNode? Reset()
    {
        _stop(new VmExitStatus(VmStopReason.Reset, Detail: "system_reset from the QMP monitor (MiniVmm does not reboot)"));
        return null;
    }

    private JsonNode? Quit()
    {
        _stop(new VmExitStatus(VmStopReason.HostRequest, Detail: QuitDetail));
        return null;
    }

    /// <summary>Marks a stop caused by `quit`, which the CLI turns into exit status 0 as QEMU does.</summary>
    public const string QuitDetail = "stopped by quit from the monitor";

    private JsonArray QueryCpus()
    {
        var tids = VcpuThreadIds.Find(_vm.VcpuThreads.Count);
        var list = new JsonArray();
        for (int i = 0; i < _vm.VcpuThreads.Count; i++)
        {
            list.Add((JsonNode)new JsonObject
            {
                ["cpu-index"] = i,
                ["qom-path"] = $"/machine/unattached/device[{i}]",
                ["thread-id"] = tids[i],
                ["props"] = new JsonObject { ["core-id"] = 0, ["thread-id"] = 0, ["node-id"] = 0, ["socket-id"] = i },
                ["target"] = "x86_64",
            });
        }
        return list;
    }
}
