using MiniVmm.Devices;

namespace MiniVmm.Machine.Devices;

/// <summary>Serial output into a stream (stdout or a file), flushed per write so a guest's line shows up at once.</summary>
public sealed class StreamByteSink(Stream stream, bool ownsStream) : IByteSink, IDisposable
{
    public void Write(ReadOnlySpan<byte> data)
    {
        try
        {
            stream.Write(data);
            stream.Flush();
        }
        catch (IOException)
        {
            // A closed stdout (e.g. `| head`) must not take the VM down; the guest keeps running.
        }
    }

    public void Dispose()
    {
        if (ownsStream) stream.Dispose();
    }
}

/// <summary>Serial output to an in-process callback.</summary>
public sealed class CallbackByteSink(Action<ReadOnlyMemory<byte>> write) : IByteSink
{
    public void Write(ReadOnlySpan<byte> data) => write(data.ToArray());
}
