namespace KvmSharp;

/// <summary>A tap device could not be opened or configured; the message says why in the user's terms.</summary>
public sealed class TapException(string message, int errno = 0) : IOException(message)
{
    /// <summary>The errno behind it (0 when MiniVmm itself refused, e.g. a bad name).</summary>
    public int Errno { get; } = errno;
}
