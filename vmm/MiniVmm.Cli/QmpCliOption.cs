using System.CommandLine;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine;
using MiniVmm.Machine.Monitor;
using MiniVmm.Machine.Snapshots;

namespace MiniVmm.Cli;

/// <summary>One `--qmp` socket: where, and whether the VM waits for a client before it starts (QEMU's wait=on).</summary>
internal sealed record QmpSpec(string Path, bool Wait);

/// <summary>
/// `--qmp unix:PATH[,server][,wait=on|off|nowait]` of `run` and `restore`, spelled as QEMU's `-qmp` so scripts can
/// share it, and given as often as wanted (one socket each; every socket takes several clients). As in QEMU,
/// `server` alone waits for a client before the guest starts; `nowait`/`wait=off` does not. A bare PATH or
/// `unix:PATH` without `server` also listens without waiting (QEMU would connect out as a client, which MiniVmm
/// does not do).
/// </summary>
internal static class QmpCliOption
{
    public static Option<string[]> Create() => new("--qmp")
    {
        Description = "serve a QMP monitor on a Unix socket: unix:PATH[,server[,nowait]] (repeatable; `server` alone waits for a client; see docs/QMP.md)",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public static bool TryParse(string[]? texts, out List<QmpSpec> specs, out string? error)
    {
        specs = new List<QmpSpec>();
        error = null;
        foreach (string text in texts ?? [])
        {
            if (!TryParseOne(text, out var spec, out error)) return false;
            if (specs.Any(s => Path.GetFullPath(s.Path) == Path.GetFullPath(spec!.Path))) { error = $"--qmp: '{spec!.Path}' is given twice"; return false; }
            specs.Add(spec!);
        }
        return true;
    }

    private static bool TryParseOne(string text, out QmpSpec? spec, out string? error)
    {
        spec = null;
        error = null;
        string body = text.StartsWith("unix:", StringComparison.Ordinal) ? text[5..] : text;
        if (body.Contains("://", StringComparison.Ordinal) || text.StartsWith("tcp:", StringComparison.Ordinal))
        {
            error = $"--qmp: '{text}' is not unix:PATH (MiniVmm serves QMP on Unix sockets only)";
            return false;
        }
        string[] parts = body.Split(',');
        bool server = false;
        bool? wait = null;
        foreach (string flag in parts.Skip(1))
        {
            switch (flag)
            {
                case "server" or "server=on": server = true; break;
                case "nowait" or "wait=off": wait = false; break;
                case "wait" or "wait=on": wait = true; break;
                case "server=off":
                    error = "--qmp: 'server=off' (connect out as a client) is not supported: MiniVmm listens";
                    return false;
                default:
                    error = $"--qmp: unknown flag '{flag}' in '{text}' (expected server, wait=on|off, nowait)";
                    return false;
            }
        }
        if (parts[0].Length == 0) { error = $"--qmp: '{text}' has no socket path"; return false; }
        spec = new QmpSpec(parts[0], wait ?? server);
        return true;
    }

    /// <summary>Starts the monitor when sockets were given; false (with a message) when one cannot be created.</summary>
    public static bool TryStart(Vm vm, SnapshotController controller, IReadOnlyList<QmpSpec> specs, ILoggerFactory loggers, out QmpServer? server, out string? error)
    {
        server = null;
        error = null;
        if (specs.Count == 0) return true;
        try
        {
            server = QmpServer.Start(vm, controller, specs.Select(s => s.Path).ToList(), loggers);
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException)
        {
            error = $"--qmp: cannot listen: {e.Message}";
            return false;
        }
    }

    /// <summary>`quit` ends MiniVmm with status 0, as it ends QEMU; every other stop keeps its own code.</summary>
    public static int ExitCode(QmpServer? server, VmExitStatus status) => server?.QuitRequested == true ? 0 : status.ProcessExitCode;
}
