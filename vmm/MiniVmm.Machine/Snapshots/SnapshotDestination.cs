using System.Diagnostics;
using System.IO.Pipes;
using KvmSharp;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.ObjectStore;
using MiniVmm.Snapshot.S3;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// Where a snapshot goes: a file (page-addressed, sparse, fsynced, atomically renamed) or `exec:CMD`, a shell command
/// whose stdin receives the stream form (QEMU's `migrate exec:` usage), or `s3://BUCKET/KEY`, an object written by a
/// multipart upload in the file form (<see cref="ObjectStoreSink"/>).
/// </summary>
public sealed class SnapshotDestination : IDisposable
{
    private readonly Process? _process;
    private readonly PipeWriteStream? _pipe;

    private SnapshotDestination(ISnapshotSink sink, Process? process, PipeWriteStream? pipe, string description)
    {
        Sink = sink;
        _process = process;
        _pipe = pipe;
        Description = description;
    }

    public ISnapshotSink Sink { get; }
    public string Description { get; }

    /// <summary>The file a destination names (`PATH` or `file:PATH`, made absolute), or null for `exec:CMD` and `s3://`.</summary>
    public static string? FilePathOf(string destination) =>
        destination.StartsWith("exec:", StringComparison.Ordinal) || ObjectUri.IsObjectUri(destination) ? null
            : Path.GetFullPath(FileNamed(destination));

    /// <summary>The path of `PATH` or `file:PATH` as given (relative paths stay relative, as the user wrote them).</summary>
    private static string FileNamed(string destination) =>
        destination.StartsWith("file:", StringComparison.Ordinal) ? destination[5..] : destination;

    /// <summary>
    /// Opens the destination. For exec: a reader that takes no data for <paramref name="stallTimeout"/> fails the
    /// snapshot (infinite: never). For s3://, <paramref name="s3"/> holds the command line's profile and endpoint.
    /// </summary>
    public static SnapshotDestination Open(string destination, SnapshotHeaderInfo info, TimeSpan? stallTimeout = null, S3Access? s3 = null)
    {
        if (ObjectUri.IsObjectUri(destination)) return OpenObject(ObjectUri.Parse(destination), info, stallTimeout, s3 ?? S3Access.Default);
        if (destination.StartsWith("exec:", StringComparison.Ordinal))
        {
            string command = destination[5..];
            if (command.Trim().Length == 0) throw new ArgumentException("exec: needs a command");
            if (info.Parent is not null)
                throw new ArgumentException("an incremental snapshot needs a file destination, not exec: (the stream form has no incremental links)");
            var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(command);
            var process = Process.Start(psi) ?? throw new IOException($"cannot start '{command}'");
            PipeWriteStream? pipe = null;
            try
            {
                // Our own non-blocking duplicate of the pipe replaces .NET's blocking stream (closed at once, so ours is
                // the only write end): a stopped or hung reader then cannot hold a snapshot thread, and cancel works.
                var stdin = (PipeStream)process.StandardInput.BaseStream;
                pipe = PipeWriteStream.DuplicateOf(stdin.SafePipeHandle);
                pipe.StallTimeout = stallTimeout ?? Timeout.InfiniteTimeSpan;
                process.StandardInput.Close();
                return new SnapshotDestination(SnapshotStreamSink.Create(pipe, info), process, pipe, destination);
            }
            catch
            {
                pipe?.Dispose();
                KillTree(process);
                process.Dispose();
                throw;
            }
        }
        string path = FileNamed(destination);
        return new SnapshotDestination(SnapshotFileSink.Create(path, info), null, null, path);
    }

    /// <summary>
    /// s3://BUCKET/KEY: endpoint and credentials from --s3-profile/--s3-endpoint, the environment and the AWS shared
    /// files (<see cref="S3Settings.Resolve"/>; never logged); the spool lives in MINIVMM_SPOOL_DIR or the temporary
    /// directory. The deadline for the store is the stall timeout.
    /// </summary>
    private static SnapshotDestination OpenObject(ObjectUri uri, SnapshotHeaderInfo info, TimeSpan? stallTimeout, S3Access s3)
    {
        var store = new S3ObjectStore(s3.Resolve());
        try
        {
            string spool = Environment.GetEnvironmentVariable("MINIVMM_SPOOL_DIR") is { Length: > 0 } dir ? dir : Path.GetTempPath();
            var sink = ObjectStoreSink.Create(store, uri, info, spool, stallTimeout ?? Timeout.InfiniteTimeSpan);
            return new SnapshotDestination(sink, null, null, uri.ToString()) { _store = store };
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    private IDisposable? _store;

    /// <summary>
    /// For exec: after success waits for the command (the sink closed the pipe: end of file); after a failure the output
    /// is worthless, so the command and its children are killed at once instead of being waited for.
    /// A non-zero exit means the reader failed.
    /// </summary>
    public string? FinishProcess(bool succeeded)
    {
        if (_process is null) return null;
        _pipe?.Dispose();
        if (!succeeded) KillTree(_process);
        _process.WaitForExit(30000);
        if (!_process.HasExited) return "the exec: command did not exit";
        return _process.ExitCode == 0 ? null : $"the exec: command exited with status {_process.ExitCode}";
    }

    /// <summary>
    /// Kills the command and its descendants (`sh -c 'cat > F'` may fork). The descendants come from
    /// /proc/PID/task/PID/children, collected before anything is killed (an orphan is re-parented and lost to the
    /// walk); .NET's Kill(entireProcessTree) scans every process of the host instead and took a second here.
    /// </summary>
    private static void KillTree(Process process)
    {
        var pids = new List<int>();
        try { CollectTree(process.Id, pids, depth: 0); }
        catch (InvalidOperationException) { return; } // never started or already reaped
        foreach (int pid in pids)
        {
            try
            {
                if (pid == process.Id) process.Kill();
                else using (var p = Process.GetProcessById(pid)) p.Kill();
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or System.ComponentModel.Win32Exception or NotSupportedException) { }
        }
    }

    private static void CollectTree(int pid, List<int> pids, int depth)
    {
        pids.Add(pid);
        if (depth > 32 || pids.Count > 4096) return;
        string children;
        try { children = File.ReadAllText($"/proc/{pid}/task/{pid}/children"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (string child in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            if (int.TryParse(child, out int c)) CollectTree(c, pids, depth + 1);
    }

    public void Dispose()
    {
        Sink.Dispose();
        _store?.Dispose();
        _pipe?.Dispose();
        _process?.Dispose();
    }
}
