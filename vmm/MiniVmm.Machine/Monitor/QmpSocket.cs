using System.Net.Sockets;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// Creates the monitor's listening Unix socket with owner-only permissions (0600) and no window in which anyone else
/// could connect: it is bound inside a fresh 0700 directory, chmod-ed, then renamed into place. A stale socket at the
/// path (left by a killed VMM, as QEMU also replaces) is replaced; a live one, or any other file, is refused.
/// </summary>
public static class QmpSocket
{
    private const int MaxPathBytes = 107; // sockaddr_un.sun_path less the terminating NUL

    public static Socket Listen(string path)
    {
        string full = Path.GetFullPath(path);
        if (System.Text.Encoding.UTF8.GetByteCount(full) > MaxPathBytes)
            throw new IOException($"QMP socket path '{full}' is longer than {MaxPathBytes} bytes");
        if (!Directory.Exists(Path.GetDirectoryName(full))) throw new IOException($"the directory of QMP socket '{full}' does not exist");
        RefuseIfInUse(full);
        string privateDir = Path.Combine(Path.GetDirectoryName(full)!, $".qmp{Environment.ProcessId}.{Random.Shared.Next(1 << 20)}");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            Directory.CreateDirectory(privateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string temporary = Path.Combine(privateDir, "s");
            bool usePrivateDir = System.Text.Encoding.UTF8.GetByteCount(temporary) <= MaxPathBytes;
            string bindPath = usePrivateDir ? temporary : full;
            if (!usePrivateDir) DeleteStale(full); // a very long path: bind in place, chmod at once (a short window)
            listener.Bind(new UnixDomainSocketEndPoint(bindPath));
            File.SetUnixFileMode(bindPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            if (usePrivateDir) File.Move(temporary, full, overwrite: true);
            listener.Listen(4);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        finally
        {
            try { if (Directory.Exists(privateDir)) Directory.Delete(privateDir, recursive: true); }
            catch (IOException) { }
        }
    }

    private static void RefuseIfInUse(string path)
    {
        if (Directory.Exists(path)) throw new IOException($"QMP socket path '{path}' is a directory");
        if (!File.Exists(path)) return;
        if (new FileInfo(path).Length > 0) throw new IOException($"'{path}' exists and is not a socket; not replacing it");
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            return; // nobody listens: a stale socket (or an empty file), safe to replace
        }
        throw new IOException($"QMP socket '{path}' is in use by another process");
    }

    private static void DeleteStale(string path)
    {
        if (File.Exists(path)) File.Delete(path);
    }
}
