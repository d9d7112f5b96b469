namespace MiniVmm.Snapshot.Tests.Incremental;

/// <summary>
/// A "vCPU": a thread writing pseudo-random pages of <see cref="TrackedRam"/> while it runs, parked on request (as a
/// paused vCPU) so the test can compare what it wrote with what the tracker saw. Writes cross no P/Invoke: under
/// WP_ASYNC a write fault is resolved inside the kernel and never blocks the thread.
/// </summary>
internal sealed class PausableWriter : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);
    private readonly TrackedRam _ram;
    private readonly Thread _thread;
    private readonly object _gate = new(); // a Monitor: Wait/Pulse need one, not a Lock
    private readonly HashSet<long> _written = [];   // writer thread only while it runs
    private readonly Random _random;
    private bool _running, _parked = true, _stop; // under _gate
    private int _budget;                           // writes left this round; under _gate

    public PausableWriter(TrackedRam ram, int seed)
    {
        _ram = ram;
        _random = new Random(seed);
        _thread = new Thread(Loop) { Name = "tracker-test-writer", IsBackground = true };
        _thread.Start();
    }

    /// <summary>
    /// Lets the writer run for about <paramref name="time"/> or <paramref name="writes"/> page writes, whichever ends
    /// first (so a round leaves pages unwritten), and returns with it still running.
    /// </summary>
    public void RunFor(TimeSpan time, int writes)
    {
        lock (_gate)
        {
            _running = true;
            _budget = writes;
            Monitor.PulseAll(_gate);
        }
        Thread.Sleep(time);
    }

    /// <summary>Parks the writer and returns the pages it wrote since the last call.</summary>
    public long[] PauseAndTakeWritten()
    {
        lock (_gate)
        {
            _running = false;
            // _parked is cleared by the writer itself when it leaves the gate, so a true here cannot be stale.
            while (!_parked)
                if (!Monitor.Wait(_gate, Guard)) throw new TimeoutException("the writer did not park");
        }
        var pages = _written.ToArray();
        _written.Clear();
        return pages;
    }

    private void Loop()
    {
        while (true)
        {
            lock (_gate)
            {
                while ((!_running || _budget <= 0) && !_stop)
                {
                    _parked = true;
                    Monitor.PulseAll(_gate);
                    Monitor.Wait(_gate);
                }
                if (_stop) return;
                _parked = false;
                _budget -= 16;
            }
            // A burst between checks of the gate: a pause never lands mid-write.
            for (int i = 0; i < 16; i++)
            {
                long page = _random.NextInt64(_ram.Pages);
                _ram.WritePage(page, (ulong)i);
                _written.Add(page);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stop = true;
            Monitor.PulseAll(_gate);
        }
        _thread.Join(Guard);
    }
}
