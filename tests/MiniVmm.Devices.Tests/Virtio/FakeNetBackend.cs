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
    /// <summary>What the device did, in order: 'R' for each frame read, 'W' for each frame written.</summary>
    public ConcurrentQueue<char> Operations { get; } = new();
    /// <summary>Thrown by the next reads, writes, or waits (null: they work).</summary>
    public volatile Exception? ReadFailure, WriteFailure, WaitFailure;

    /// <summary>Queues one frame (header first) as if it had arrived on the tap.</summary>
    public void Inject(byte[] frameWithHeader)
    {
        _incoming.Enqueue(frameWithHeader);
        _readable.Release();
    }

    /// <summary>Makes the device's watcher fail in its wait from now on (wakes it so it sees the failure).</summary>
    public void FailWaits(Exception failure)
    {
        WaitFailure = failure;
        _readable.Release();
    }

    public void SetGuestOffloads(bool csum, bool tso4, bool tso6) => Offloads = (csum, tso4, tso6);

    public int TryRead(Span<byte> buffer)
    {
        if (ReadFailure is { } failure) throw failure;
        if (!_incoming.TryDequeue(out var f)) return -1;
        Operations.Enqueue('R');
        int n = Math.Min(f.Length, buffer.Length);
        f.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    public bool TryWrite(ReadOnlySpan<byte> frame)
    {
        if (WriteFailure is { } failure) throw failure;
        if (Full) return false;
        Operations.Enqueue('W');
        Sent.Enqueue(frame.ToArray());
        return true;
    }

    public bool WaitReadable()
    {
        _readable.Wait();
        if (WaitFailure is { } failure && !_closed) throw failure;
        return !_closed;
    }

    public void Close()
    {
        _closed = true;
        _readable.Release();
    }

    public void Dispose() => _readable.Dispose();
}
