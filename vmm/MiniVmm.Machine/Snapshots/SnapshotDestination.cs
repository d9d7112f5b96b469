using System.Diagnostics;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// Where a snapshot goes: a file (page-addressed, sparse, fsynced, atomically renamed) or `exec:CMD`, a shell command
/// whose stdin receives the stream form (QEMU's `migrate exec:` usage).
/// </summary>
public sealed class SnapshotDestination : IDisposable
{
    private readonly Process? _process;

    private SnapshotDestination(ISnapshotSink sink, Process? process, string description)
    {
        Sink = sink;
        _process = process;
        Description = description;
    }

    public ISnapshotSink Sink { get; }
    public string Description { get; }

    public static SnapshotDestination Open(string destination, SnapshotHeaderInfo info)
    {
        if (destination.StartsWith("exec:", StringComparison.Ordinal))
        {
            string command = destination[5..];
            if (command.Trim().Length == 0) throw new ArgumentException("exec: needs a command");
            var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(command);
            var process = Process.Start(psi) ?? throw new IOException($"cannot start '{command}'");
            try
            {
                return new SnapshotDestination(SnapshotStreamSink.Create(process.StandardInput.BaseStream, info), process, destination);
            }
            catch
            {
                process.Kill();
                process.Dispose();
                throw;
            }
        }
        string path = destination.StartsWith("file:", StringComparison.Ordinal) ? destination[5..] : destination;
        return new SnapshotDestination(SnapshotFileSink.Create(path, info), null, path);
    }

    /// <summary>For exec: closes the pipe and waits for the command; a non-zero exit means the reader failed.</summary>
    public string? FinishProcess(bool succeeded)
    {
        if (_process is null) return null;
        try { _process.StandardInput.Close(); } catch (Exception e) when (e is IOException or ObjectDisposedException) { /* the sink closed it */ }
        if (!succeeded && !_process.WaitForExit(2000)) { try { _process.Kill(); } catch (InvalidOperationException) { } }
        _process.WaitForExit(30000);
        if (!_process.HasExited) return "the exec: command did not exit";
        return _process.ExitCode == 0 ? null : $"the exec: command exited with status {_process.ExitCode}";
    }

    public void Dispose()
    {
        Sink.Dispose();
        _process?.Dispose();
    }
}
