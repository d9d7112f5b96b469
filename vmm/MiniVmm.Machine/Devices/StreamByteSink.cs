using Microsoft.Extensions.Logging;
using MiniVmm.Devices;

namespace MiniVmm.Machine.Devices;

/// <summary>
/// Serial output into a stream (stdout or a file), flushed per write so a guest's line shows up at once. An output
/// error (a closed stdout under `| head`, /dev/full, a full disk) is logged once and the output is dropped from then
/// on: the guest keeps running and its exit status stands.
/// </summary>
public sealed class StreamByteSink(Stream stream, bool ownsStream, ILogger log, string name) : IByteSink, IDisposable
{
    private volatile bool _failed;

    public void Write(ReadOnlySpan<byte> data)
    {
        if (_failed) return;
        try
        {
            stream.Write(data);
            stream.Flush();
        }
        catch (Exception e) when (e is IOException or NotSupportedException or ObjectDisposedException or UnauthorizedAccessException)
        {
            _failed = true;
            log.LogWarning("serial output to {Name} failed, further output is dropped: {Error}", name, e.Message);
        }
    }

    public void Dispose()
    {
        if (!ownsStream) return;
        try { stream.Dispose(); }
        catch (Exception e) when (e is IOException or NotSupportedException or UnauthorizedAccessException)
        {
            if (!_failed) log.LogWarning("serial output to {Name} failed at close: {Error}", name, e.Message);
        }
    }
}

/// <summary>Serial output to an in-process callback.</summary>
public sealed class CallbackByteSink(Action<ReadOnlyMemory<byte>> write) : IByteSink
{
    public void Write(ReadOnlySpan<byte> data) => write(data.ToArray());
}
