namespace MiniVmm.Core.Boot;

/// <summary>Which input of a boot a <see cref="BootImageException"/> is about, so the caller names that file.</summary>
public enum BootInput
{
    Kernel,
    Initrd,
}

/// <summary>A boot image cannot be used: it is malformed, is not the kind of image expected, or does not fit the
/// guest (RAM too small, command line too long). The message says why, for the user; <see cref="Input"/> says whose
/// fault it is (the command line's limit is the kernel's, so it counts as the kernel's).</summary>
public sealed class BootImageException : Exception
{
    public BootImageException(string message, BootInput input = BootInput.Kernel)
        : base(message)
    {
        Input = input;
    }

    public BootInput Input { get; }
}
