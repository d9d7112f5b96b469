using KvmSharp;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// Takes disk latency off the write-fault path. The fault handler copies a faulting block out of guest RAM into one
/// of a fixed set of buffers (allocated before the freeze), marks its pages saved, un-protects them — the guest goes
/// on — and queues the copy; this class's own thread hands queued copies to the sink. When every buffer is in flight
/// the handler waits for one to come back, for a bounded time: it never writes to the destination itself, so a
/// destination that stops taking data can delay a guest write by at most that bound (then the snapshot fails).
/// Memory stays bounded (the buffers are allocated before the freeze). The buffers share one anonymous mapping on huge
/// pages whose first <see cref="PrefaultBytes"/> are faulted in before the freeze and handed out first: a fault copy
/// into never-touched memory takes a page fault per 4 KiB of the buffer, which made the first copies into each buffer
/// the slowest faults of a snapshot.
/// </summary>
public sealed class FaultBlockWriter : IDisposable
{
    /// <summary>How much of the buffers is faulted in up front (the default budget; a larger one stays lazy).</summary>
    public const long PrefaultBytes = SnapshotOptions.DefaultFaultBufferBytes;

    private readonly ISnapshotSink _sink;
    private readonly MemoryMapping _memory;
    private readonly (ulong Offset, int Length)[] _buffers;
    private readonly Stack<int> _freeSmall = new();  // blocks up to _smallPages
    private readonly Stack<int> _freeLarge = new();  // whole fault-around windows
    private readonly int _smallPages;
    private readonly Queue<(int Region, long First, int Pages, int Buffer)> _queue;
    private readonly object _gate = new(); // a Monitor (not System.Threading.Lock): the writer thread waits on it
    private readonly Thread _thread;
    private readonly CancellationToken _cancel;
    private bool _closing;
    private Exception? _error;
    private long _bufferWaits;
    private long _bufferWaitTicks;

    /// <param name="smallPages">Size of the small buffers (the base fault-around block).</param>
    /// <param name="smallCount">How many small buffers.</param>
    /// <param name="largePages">Size of the large buffers (the largest adaptive window).</param>
    /// <param name="largeCount">How many large buffers.</param>
    public FaultBlockWriter(ISnapshotSink sink, int smallPages, int smallCount, int largePages, int largeCount, CancellationToken cancel)
    {
        _sink = sink;
        _cancel = cancel;
        _smallPages = smallPages;
        _buffers = new (ulong, int)[smallCount + largeCount];
        // Never more queued than buffers: sized now, so enqueueing on the fault path never allocates.
        _queue = new Queue<(int Region, long First, int Pages, int Buffer)>(_buffers.Length);
        ulong offset = 0;
        for (int i = 0; i < _buffers.Length; i++)
        {
            int length = (i < smallCount ? smallPages : largePages) * (int)GuestMemory.PageSize;
            _buffers[i] = (offset, length);
            offset += (ulong)length;
        }
        _memory = MemoryMapping.Anonymous(offset, hugePages: true);
        _memory.TryPopulate(0, Math.Min(offset, (ulong)PrefaultBytes), write: true); // best effort: else the first copies fault
        // Lowest offsets on top, so the faulted-in buffers are the ones handed out first (and, freed, again).
        for (int i = _buffers.Length - 1; i >= 0; i--) (i < smallCount ? _freeSmall : _freeLarge).Push(i);
        _thread = new Thread(Run) { Name = "snap-fault-writer", IsBackground = true };
        _thread.Start();
    }

    /// <summary>
    /// How many small (base-block) and large (whole-window) buffers a budget of <paramref name="budgetBytes"/> buys:
    /// small buffers for at least 4 MiB (at least four), and the rest, at least one, in whole windows.
    /// </summary>
    public static (int SmallCount, int LargeCount) Split(long budgetBytes, int smallPages, int largePages)
    {
        long smallBytes = (long)smallPages * (long)GuestMemory.PageSize, largeBytes = (long)largePages * (long)GuestMemory.PageSize;
        int small = (int)Math.Max(4, (4L << 20) / smallBytes);
        int large = (int)Math.Clamp((budgetBytes - small * smallBytes) / largeBytes, 1, 1 << 16);
        return (small, large);
    }

    /// <summary>Fault copies that found every buffer in flight and waited for one.</summary>
    public long BufferWaits => Interlocked.Read(ref _bufferWaits);

    /// <summary>The time those copies waited, summed.</summary>
    public TimeSpan BufferWaitTime => TimeSpan.FromTicks(Interlocked.Read(ref _bufferWaitTicks));

    /// <summary>True when a whole-window buffer is free (the fault handler only grows its window then).</summary>
    public bool LargeBufferFree
    {
        get { lock (_gate) return _freeLarge.Count > 0; }
    }

    /// <summary>The first error the writer thread hit (the engine fails the snapshot with it).</summary>
    public Exception? Error { get { lock (_gate) return _error; } }

    /// <summary>
    /// Copies [first, first+pages) of <paramref name="region"/> out of guest RAM into a free buffer and queues it,
    /// waiting at most <paramref name="maxWait"/> for a buffer to come back from the writer thread. Never allocates.
    /// </summary>
    /// <exception cref="SnapshotException">No buffer came back in time (the destination stalled), or the writer closed.</exception>
    /// <exception cref="OperationCanceledException">The snapshot was cancelled while waiting.</exception>
    public void CopyAndQueue(GuestMemoryRegion region, int regionIndex, long first, int pages, TimeSpan maxWait)
    {
        if (pages * (int)GuestMemory.PageSize > _buffers[^1].Length)
            throw new ArgumentOutOfRangeException(nameof(pages), pages, "larger than the largest fault buffer");
        int buffer;
        long deadline = Environment.TickCount64 + (long)maxWait.TotalMilliseconds;
        long waitStart = 0;
        lock (_gate)
        {
            while (true)
            {
                // Checked before taking a buffer: once closed, no thread is left to write a queued copy.
                if (_closing) throw new SnapshotException("internal error: a fault block was queued after the writer closed");
                if (TryTakeBuffer(pages, out buffer))
                {
                    if (waitStart != 0)
                    {
                        _bufferWaits++;
                        _bufferWaitTicks += System.Diagnostics.Stopwatch.GetElapsedTime(waitStart).Ticks;
                    }
                    break;
                }
                if (waitStart == 0) waitStart = System.Diagnostics.Stopwatch.GetTimestamp();
                _cancel.ThrowIfCancellationRequested();
                if (_error is { } writeError) throw new SnapshotException("the destination failed: " + writeError.Message, writeError);
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                    throw new SnapshotException($"the destination stalled: a guest write waited {maxWait.TotalMilliseconds:0} ms " +
                        "for buffer space (every fault buffer still queued for the destination)");
                // Short slices: cancellation has no pulse of its own.
                Monitor.Wait(_gate, (int)Math.Min(left, 20));
            }
        }
        int bytes = pages * (int)GuestMemory.PageSize;
        region.GetSpan((ulong)first * GuestMemory.PageSize, bytes).CopyTo(Buffer(buffer));
        lock (_gate)
        {
            _queue.Enqueue((regionIndex, first, pages, buffer));
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>A buffer of the block's class, else any buffer large enough. Caller holds the gate.</summary>
    private bool TryTakeBuffer(int pages, out int buffer)
    {
        if (pages <= _smallPages && _freeSmall.TryPop(out buffer)) return true;
        return _freeLarge.TryPop(out buffer);
    }

    /// <summary>Waits until every queued copy reached the sink, then stops the thread.</summary>
    public void Drain()
    {
        lock (_gate)
        {
            _closing = true;
            Monitor.PulseAll(_gate);
        }
        _thread.Join();
    }

    private void Run()
    {
        while (true)
        {
            (int Region, long First, int Pages, int Buffer) item;
            lock (_gate)
            {
                while (_queue.Count == 0 && !_closing) Monitor.Wait(_gate);
                if (_queue.Count == 0) return;
                item = _queue.Dequeue();
            }
            try
            {
                if (!_cancel.IsCancellationRequested && Error is null)
                    _sink.WritePrivatePages(item.Region, item.First, Buffer(item.Buffer)[..(item.Pages * (int)GuestMemory.PageSize)]);
            }
            catch (Exception e)
            {
                lock (_gate) _error ??= e;
            }
            lock (_gate)
            {
                (_buffers[item.Buffer].Length <= _smallPages * (int)GuestMemory.PageSize ? _freeSmall : _freeLarge).Push(item.Buffer);
                Monitor.PulseAll(_gate); // a fault handler may be waiting for this buffer
            }
        }
    }

    private Span<byte> Buffer(int index) => _memory.GetSpan(_buffers[index].Offset, _buffers[index].Length);

    /// <summary>Drains, then unmaps the buffers (no thread uses them any more).</summary>
    public void Dispose()
    {
        Drain();
        _memory.Dispose();
    }
}
