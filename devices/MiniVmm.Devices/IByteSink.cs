namespace MiniVmm.Devices;

/// <summary>Where a character device's output goes (stdout, a file, a socket, a test buffer). Called synchronously
/// from the vCPU thread that performed the write, with the device's lock held: an implementation should be quick and
/// must not call back into the device.</summary>
public interface IByteSink
{
    void Write(ReadOnlySpan<byte> data);
}

/// <summary>A sink that drops everything.</summary>
public sealed class NullByteSink : IByteSink
{
    public static readonly NullByteSink Instance = new();

    public void Write(ReadOnlySpan<byte> data)
    {
    }
}
