using System.Collections.Concurrent;
using MiniVmm.Devices.Virtio.Net;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>A tap stand-in: frames injected here are what the device reads; what it writes is recorded.</summary>
internal sealed class FakeNetBackend(bool offloads = true) : INetBackend
{
    private readonly ConcurrentQueue<byte[]> _incoming = new();
    private readonly SemaphoreSlim _readable = new(0);
    private volatile bool _closed;

    public bool SupportsGuestOffloads { get; } = offloads;
    public ConcurrentQueue<byte[]> Sent { get; } = new();
    public (bool Csum, bool Tso4, bool Tso6) Offloads { get; private set; }
    public bool Full { get; set; }
    public int Waiting => _incoming.Count;

    /// <summary>Queues one frame (header first) as if it had arrived on the tap.</summary>
    public void Inject(byte[] frameWithHeader)
    {
        _incoming.Enqueue(frameWithHeader);
        _readable.Release();
    }

    public void SetGuestOffloads(bool csum, bool tso4, bool tso6) => Offloads = (csum, tso4, tso6);

    public int TryRead(Span<byte> buffer)
    {
        if (!_incoming.TryDequeue(out var f)) return -1;
        int n = Math.Min(f.Length, buffer.Length);
        f.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    public bool TryWrite(ReadOnlySpan<byte> frame)
    {
        if (Full) return false;
        Sent.Enqueue(frame.ToArray());
        return true;
    }

    public bool WaitReadable()
    {
        _readable.Wait();
        return !_closed;
    }

    public void Close()
    {
        _closed = true;
        _readable.Release();
    }

    public void Dispose() => _readable.Dispose();
}
