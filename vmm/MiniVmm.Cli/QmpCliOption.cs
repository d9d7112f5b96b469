using System.CommandLine;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine;
using MiniVmm.Machine.Monitor;
using MiniVmm.Machine.Snapshots;

namespace MiniVmm.Cli;

/// <summary>
/// `--qmp unix:PATH[,server][,nowait]` of `run` and `restore`, spelled as QEMU's `-qmp` so scripts can share it
/// (a bare PATH works too). MiniVmm only listens; it never waits for a client before starting the guest.
/// </summary>
internal static class QmpCliOption
{
    public static Option<string?> Create() => new("--qmp")
    {
        Description = "serve a QMP monitor on a Unix socket: unix:PATH[,server,nowait] (created 0600; see docs/QMP.md)",
    };

    public static bool TryParse(string? text, out string? path, out string? error)
    {
        path = null;
        error = null;
        if (text is null) return true;
        string spec = text.StartsWith("unix:", StringComparison.Ordinal) ? text[5..] : text;
        if (spec.Contains("://", StringComparison.Ordinal) || text.StartsWith("tcp:", StringComparison.Ordinal))
        {
            error = $"--qmp: '{text}' is not unix:PATH (MiniVmm serves QMP on Unix sockets only)";
            return false;
        }
        string[] parts = spec.Split(',');
        foreach (string flag in parts.Skip(1))
        {
            if (flag is "server" or "server=on" or "nowait" or "wait=off") continue;
            error = flag is "wait" or "wait=on" or "server=off"
                ? $"--qmp: '{flag}' is not supported: MiniVmm listens and starts the guest without waiting for a client"
                : $"--qmp: unknown flag '{flag}' (expected server, nowait)";
            return false;
        }
        if (parts[0].Length == 0) { error = "--qmp: no socket path"; return false; }
        path = parts[0];
        return true;
    }

    /// <summary>Starts the monitor when a path was given; false (with a message) when the socket cannot be created.</summary>
    public static bool TryStart(Vm vm, SnapshotController controller, string? path, ILoggerFactory loggers, out QmpServer? server, out string? error)
    {
        server = null;
        error = null;
        if (path is null) return true;
        try
        {
            server = QmpServer.Start(vm, controller, path, loggers);
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException)
        {
            error = $"--qmp: cannot listen on '{path}': {e.Message}";
            return false;
        }
    }

    /// <summary>`quit` ends MiniVmm with status 0, as it ends QEMU; every other stop keeps its own code.</summary>
    public static int ExitCode(QmpServer? server, VmExitStatus status) => server?.QuitRequested == true ? 0 : status.ProcessExitCode;
}
