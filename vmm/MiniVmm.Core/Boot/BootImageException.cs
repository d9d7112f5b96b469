namespace MiniVmm.Core.Boot;

/// <summary>A boot image cannot be used: it is malformed, is not the kind of image expected, or does not fit the
/// guest (RAM too small, command line too long). The message says why, for the user.</summary>
public sealed class BootImageException : Exception
{
    public BootImageException(string message)
        : base(message)
    {
    }
}
