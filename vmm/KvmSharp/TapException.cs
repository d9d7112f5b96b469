namespace KvmSharp;

/// <summary>A tap device could not be opened or configured; the message says why in the user's terms.</summary>
public sealed class TapException(string message, Errno errno = Errno.None) : IOException(message)
{
    /// <summary>The errno behind it (None when MiniVmm itself refused, e.g. a bad name).</summary>
    public Errno Errno { get; } = errno;
}
