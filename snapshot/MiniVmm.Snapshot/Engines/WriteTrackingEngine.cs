using System.Diagnostics;
using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Incremental;
using MiniVmm.Snapshot.Userfault;

namespace MiniVmm.Snapshot.Engines;

/// <summary>
/// The live snapshot of docs/DESIGN.md §4: freeze RAM with userfaultfd write protection, restart the vCPUs at once, then save
/// every page exactly once — pages the guest writes first (fault handler, arrival order, fault-around blocks), the rest
/// by a linear scan. A page is un-protected only after its content has been handed to the destination.
/// </summary>
public sealed class WriteTrackingEngine : ISnapshotEngine
{
    public const UffdFeatures RequiredFeatures =
        UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated | UffdFeatures.ThreadId;

    public string Name => "write-tracking";

    public SnapshotJob Start(ISnapshotSource source, ISnapshotSink sink, SnapshotOptions options, ILogger log)
    {
        options.Validate();
        var run = new WriteTrackingRun(source, sink, options, log);
        run.Start();
        return run.Job;
    }

    internal static string DescribeFeatures(UffdFeatures bits) => UffdFeatureNames.Describe(bits);
}

/// <summary>
/// One write-tracking snapshot: owns its userfaultfd, its fault loop, its fault-block writer and its two threads. It
/// disposes itself when it ends (success, cancel or failure), after both threads are done with what it frees.
/// </summary>
internal sealed class WriteTrackingRun : IDisposable
{
    private readonly ISnapshotSource _source;
    private readonly ISnapshotSink _sink;
    private readonly SnapshotOptions _options;
    private readonly ILogger _log;
    private readonly GuestMemory _memory;
    private readonly PageSaver _saver;
    private readonly FaultBlockWriter _blockWriter;
    private readonly long[] _sequentialNext;   // fault thread only
    private readonly long[] _trackNext;        // tracked: the page after the run freed last, per region (fault thread)
    private long _trackRun = 1;
    private long _window;
    private readonly LatencyRecorder _stalls = new(parts: 3); // copy (with any buffer wait), claim wait, un-protect
    private UserfaultLoop? _loop;           // serves the write faults; created with the userfaultfd
    private IDisposable? _userfaultHold;     // host writes fault pages in from a system call while RAM is protected
    private readonly long _start = Stopwatch.GetTimestamp();
    private UserfaultFd? _uffd;
    private IReadOnlyList<StateSection> _sections = [];
    private long _faults;
    private long _resumedAt;
    private string? _freezeBreakdown;
    private long _freezeStart;
    private long _releasedAt;
    private Exception? _error;
    // Change tracking (options.ChangeTracker): the engine holds the RAM between the tracker's TakeChanged at the freeze
    // and its Resume at the end. Pages stay protected until then, and every page the guest writes meanwhile is recorded
    // (only the faulting page is un-protected), so the next link misses no write.
    private readonly IChangeTracker? _tracker;
    private PageBitmap[]? _changed;            // the pages this link saves (incremental), from the tracker
    private PageBitmap[]? _writtenSinceFreeze; // the next link's first pages
    private long _changedPages;
    private volatile bool _trackingLost;       // protection was dropped without recording (failure paths)
    private bool _registered;                  // our userfaultfd holds the RAM (a tracker may hold it until the freeze)
    private TimeSpan _handoverPause;
    private volatile bool _realtime;           // the fault thread got SCHED_FIFO
    private KnownZeroPages? _knownZero;        // scan thread only, after the freeze

    public WriteTrackingRun(ISnapshotSource source, ISnapshotSink sink, SnapshotOptions options, ILogger log)
    {
        _source = source;
        _sink = sink;
        _options = options;
        _log = log;
        _memory = source.Memory;
        (_saver, Job) = ReferenceEngineSupport.CreateSaverAndJob("write-tracking", _memory, sink);
        Job.FaultsServed = () => Interlocked.Read(ref _faults);
        // Base-size blocks for 4 MiB, the rest of the budget in whole adaptive windows: bounded, allocated before the freeze.
        int basePages = options.FaultAroundPages;
        var (smallCount, largeCount) = FaultBlockWriter.Split(options.FaultBufferBytes, basePages, SnapshotOptions.MaxFaultAroundPages);
        _blockWriter = new FaultBlockWriter(sink, basePages, smallCount, SnapshotOptions.MaxFaultAroundPages, largeCount, Job.CancellationToken);
        _sequentialNext = new long[_memory.Regions.Count];
        Array.Fill(_sequentialNext, -1);
        _trackNext = new long[_memory.Regions.Count];
        Array.Fill(_trackNext, -1);
        _saver.AsyncWriter = _blockWriter;
        _saver.AsyncWait = options.MaxFaultWait;
        _tracker = options.ChangeTracker;
        if (!options.UnsafeSkipWriteProtection) _knownZero = KnownZeroPages.TryCreate(_memory, log);
    }

    public SnapshotJob Job { get; }

    public void Start()
    {
        try
        {
            Prepare();
            _loop = new UserfaultLoop(_uffd!, _memory);
            _userfaultHold = _memory.HoldForUserfaults();
        }
        catch
        {
            ReleaseProtection();
            Dispose();
            throw;
        }
        // The fault thread is up before the freeze (it idles in epoll); the scanner starts only once the vCPUs run
        // again, so on a 2-core host neither competes with the main loop for the start bottom-half.
        var fault = new Thread(FaultLoop) { Name = "snap-faults", IsBackground = true };
        fault.Start();
        try
        {
            Freeze(() =>
            {
                var scan = new Thread(ScanLoop) { Name = "snap-scan", IsBackground = true };
                scan.Start(fault);
            });
        }
        catch
        {
            Job.Cancel();
            StopFaultThread(fault);
            ReleaseProtection();
            Dispose();
            throw;
        }
    }

    private void Prepare()
    {
        _source.PrepareMemory();
        if (_memory.IsFileBacked)
            throw new SnapshotException("a write-tracking snapshot needs anonymous guest RAM, and this VM's RAM is a private " +
                "mapping of its snapshot file (restored with --memory mmap), which userfaultfd cannot write-protect; " +
                "use --snapshot-mode stop-copy or dirty-log, or restore with --memory lazy (the default) or eager");
        if (_options.Incremental && _tracker is not { IsTracking: true })
            throw new SnapshotException("an incremental snapshot needs the pages written since its parent, and no tracker recorded them");
        // Before the freeze, while the guest runs: map the huge zero page into never-touched 2 MiB areas, so that
        // protecting them at the freeze costs one entry each instead of a page table of markers (halves the downtime
        // of a half-empty 512 MiB guest on THP memory; harmless elsewhere, reads never count as tracked writes).
        foreach (var r in _memory.Regions) r.TouchForRead(2UL << 20);
        if (_tracker is not null)
        {
            // A tracker may hold the RAM with its userfaultfd until the freeze: ours registers there, while paused.
            _uffd = CreateUffd();
            _writtenSinceFreeze = PageBitmap.ForRegions(_memory.Regions.Select(r => r.PageCount));
            return;
        }
        _uffd = CreateUffd();
        try { RegisterRam(); }
        catch
        {
            _uffd.Dispose(); // no thread uses it yet
            _uffd = null;
            throw;
        }
    }

    private static UserfaultFd CreateUffd()
    {
        try { return UserfaultFd.Create(WriteTrackingEngine.RequiredFeatures, WriteTrackingEngine.DescribeFeatures); }
        catch (LinuxException e) { throw new SnapshotException("cannot prepare the write-tracking snapshot: " + e.Message, e); }
    }

    private void RegisterRam()
    {
        try
        {
            foreach (var r in _memory.Regions)
            {
                var operations = r.RegisterWith(_uffd!, UffdRegisterMode.WriteProtect);
                _registered = true;
                if ((operations & UffdRangeOperations.WriteProtect) == 0)
                    throw new SnapshotException("guest RAM cannot be write-protected through userfaultfd (UFFDIO_WRITEPROTECT unsupported for this memory)");
            }
        }
        catch (LinuxException e)
        {
            // The owner (Prepare, or the release after a failed freeze) disposes the userfaultfd.
            throw new SnapshotException("cannot prepare the write-tracking snapshot: " + e.Message, e);
        }
    }

    /// <summary>At the freeze (paused): takes the RAM and the changed set over from the tracker.</summary>
    private void TakeOverFromTracker()
    {
        if (_tracker is null) return;
        if (_tracker.IsTracking)
        {
            var changed = _tracker.TakeChanged();
            if (_options.Incremental) _changed = changed;
        }
        RegisterRam();
        if (_changed is null) return;
        if (_options.UnsafeDropOneChangedPage) DropOneChangedPage(_changed);
        for (int ri = 0; ri < _changed.Length; ri++)
        {
            _saver.States[ri].MarkSavedExcept(_changed[ri]);
            _changedPages += _changed[ri].Count();
        }
    }

    /// <summary>
    /// The negative control: forget the highest changed page of the last region that has one (in the test guests a
    /// buffer page, which their self-check reads again), so that the link lacks it.
    /// </summary>
    private static void DropOneChangedPage(PageBitmap[] changed)
    {
        for (int ri = changed.Length - 1; ri >= 0; ri--)
            for (long w = changed[ri].WordCount - 1; w >= 0; w--)
                if (changed[ri].Word(w) is var bits and not 0)
                {
                    changed[ri].Reset(w * 64 + 63 - System.Numerics.BitOperations.LeadingZeroCount(bits));
                    return;
                }
    }

    /// <summary>The only guest downtime: pause, capture state, protect all RAM, and queue the start bottom-half.</summary>
    private void Freeze(Action startScan)
    {
        _freezeStart = Stopwatch.GetTimestamp();
        _source.Pause();
        long paused = Stopwatch.GetTimestamp();
        try
        {
            _sections = _source.CaptureState();
            long stateCaptured = Stopwatch.GetTimestamp();
            TakeOverFromTracker();
            long captured = Stopwatch.GetTimestamp();
            if (!_options.UnsafeSkipWriteProtection)
                foreach (var r in _memory.Regions)
                    r.WriteProtectAll(_uffd!, protect: true);
            long protectedAt = Stopwatch.GetTimestamp();
            _freezeBreakdown = $"pause {Stopwatch.GetElapsedTime(_freezeStart, paused).TotalMilliseconds:F2} ms, " +
                $"capture {Stopwatch.GetElapsedTime(paused, stateCaptured).TotalMilliseconds:F2} ms, " +
                (_tracker is null ? "" : $"take-over {Stopwatch.GetElapsedTime(stateCaptured, captured).TotalMilliseconds:F2} ms, ") +
                $"protect {Stopwatch.GetElapsedTime(captured, protectedAt).TotalMilliseconds:F2} ms";
        }
        catch
        {
            _source.Resume();
            throw;
        }
        _source.ScheduleResume(() =>
        {
            Volatile.Write(ref _resumedAt, Stopwatch.GetTimestamp());
            startScan();
        });
    }

    /// <summary>Serves write faults in arrival order until the scan has finished and the queue is empty.</summary>
    private void FaultLoop()
    {
        if (_options.RealtimeFaultThread) MakeRealtime();
        try
        {
            var cancel = Job.CancellationToken;
            // Cancel wakes the loop at once (the registration ends before the loop is disposed: its owner joins this thread).
            using var wake = cancel.Register(_loop!.Stop);
            _loop.Run(Serve, () => cancel.IsCancellationRequested);
        }
        catch (Exception e)
        {
            Fail(e);
            // No one serves faults from here on: wake every blocked writer now rather than when the scanner ends
            // (it may be inside a destination write until the sink is interrupted).
            _trackingLost = true;
            UnprotectAll();
        }
    }

    /// <summary>The lowest real-time priority is enough: it puts the fault thread ahead of every normal thread.</summary>
    private void MakeRealtime()
    {
        var refused = ThreadScheduling.TrySetCurrentThreadRealtime(1);
        _realtime = refused == Errno.None;
        if (!_realtime)
            _log.LogWarning("write faults are served from a normal thread: the kernel refused real-time scheduling ({Errno}; " +
                "it needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least 1)", refused);
    }

    /// <summary>Removes write protection from all RAM, waking blocked writers; the registration stays (failure path).</summary>
    private void UnprotectAll()
    {
        foreach (var r in _memory.Regions)
        {
            try { r.WriteProtectAll(_uffd!, protect: false); }
            catch (Exception e) when (e is LinuxException or ObjectDisposedException) { _log.LogError(e, "could not un-protect guest RAM"); }
        }
    }

    private void Serve(int ri, long page, long readAt)
    {
        {
            var r = _memory.Regions[ri];
            long block = _options.FaultAroundPages;
            long first = page & ~(block - 1);
            // Sequential writers: a fault right where the previous window ended doubles the window (up to 2 MiB, one
            // huge page), like read-ahead, so a streaming guest faults a few times per huge page instead of 32.
            // Grow only while a whole-window copy buffer is free: when the disk falls behind, a large synchronous write
            // on the fault path would stall the guest far longer than a few more small faults.
            _window = _options.AdaptiveFaultAround && first == _sequentialNext[ri] && _blockWriter.LargeBufferFree
                ? Math.Min(_window * 2, SnapshotOptions.MaxFaultAroundPages)
                : block;
            long count = Math.Min(_window, r.PageCount - first);
            _sequentialNext[ri] = first + count;
            _saver.SaveRange(ri, first, count, async: true);
            long copied = Stopwatch.GetTimestamp();
            _saver.States[ri].WaitUntilSaved(first, count, Job.CancellationToken);
            long claimed = Stopwatch.GetTimestamp();
            if (_writtenSinceFreeze is { } written)
            {
                // Tracked: what goes free belongs to the next link. A sequential writer (a fault on the page right after
                // the run freed last) frees a doubling run ahead of it, recorded whole: it is about to write those pages
                // anyway, and a fault per 4 KiB page would cost it most of its speed. Any other write frees its page only.
                long run = page == _trackNext[ri] ? Math.Min(_trackRun * 2, SnapshotOptions.MaxFaultAroundPages) : 1;
                run = Math.Min(run, r.PageCount - page);
                _trackRun = run;
                _trackNext[ri] = page + run;
                if (page + run > first + count)
                {
                    _saver.SaveRange(ri, page, run, async: true);
                    _saver.States[ri].WaitUntilSaved(page, run, Job.CancellationToken);
                }
                written[ri].SetRange(page, run);
                r.WriteProtect(_uffd!, page, run, protect: false);
            }
            else
                r.WriteProtect(_uffd!, first, count, protect: false);
            Interlocked.Increment(ref _faults);
            long done = Stopwatch.GetTimestamp();
            _stalls.Record(done - readAt, [copied - readAt, claimed - copied, done - claimed]);
        }
    }

    private void ScanLoop(object? faultThread)
    {
        var cancel = Job.CancellationToken;
        var throttle = new ScanThrottle(_options.RateLimitBytesPerSecond); // faults are served regardless
        var staging = new byte[64 * (int)GuestMemory.PageSize];
        long scanBytes = 0; // only the scan's own writes: the fault path's are never delayed and must not delay the scan
        try
        {
            _knownZero?.Find(_log);
            for (int ri = 0; ri < _memory.Regions.Count && !cancel.IsCancellationRequested; ri++)
            {
                var r = _memory.Regions[ri];
                var states = _saver.States[ri];
                for (long first = 0; first < r.PageCount && !cancel.IsCancellationRequested; first += _options.ScanChunkPages)
                {
                    long count = Math.Min(_options.ScanChunkPages, r.PageCount - first);
                    scanBytes += _saver.SaveRangeStaged(ri, first, count, staging, _knownZero?.Region(ri));
                    states.WaitUntilSaved(first, count, cancel);
                    // Tracked: saved pages stay protected, so a later write is still seen (and recorded) by a fault.
                    if (!_options.UnsafeSkipWriteProtection && _tracker is null)
                        r.WriteProtect(_uffd!, first, count, protect: false);
                    throttle.WaitFor(scanBytes, cancel);
                }
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
        if (_tracker is not null && _error is null && !cancel.IsCancellationRequested)
        {
            // Tracked: the fault thread keeps recording writes while the buffers drain; then, paused, the RAM goes back to
            // the tracker (whose faults the kernel resolves itself) before the file is completed and synced.
            _blockWriter.Drain();
            if (_blockWriter.Error is { } drainError) Fail(drainError);
            HandOver((Thread)faultThread!, linkWritten: _error is null);
            Finish(handedOver: true); // the protected window ended at the handover
            return;
        }
        StopFaultThread((Thread)faultThread!);
        // Every page is out of guest RAM by now (saved, or copied into a fault buffer), or the snapshot failed: either
        // way the guest need not wait for the buffers to reach the destination.
        ReleaseProtection();
        _releasedAt = Stopwatch.GetTimestamp();
        _blockWriter.Drain();
        if (_blockWriter.Error is { } writeError) Fail(writeError);
        Finish(handedOver: false);
    }

    private void StopFaultThread(Thread faultThread)
    {
        _loop?.Stop();
        faultThread.Join();
    }

    /// <summary>
    /// Tracked snapshots: with the vCPUs paused, serves the last faults, gives the RAM back to the tracker with what the
    /// guest wrote meanwhile (plus this link's changed set when the link was not written, so nothing is lost) and
    /// resumes. When the pause cannot happen (the VM is stopping) tracking ends; the next snapshot is then a full one.
    /// </summary>
    private void HandOver(Thread faultThread, bool linkWritten)
    {
        long t0 = Stopwatch.GetTimestamp();
        bool ran = false;
        try
        {
            ran = _source.TryRunPaused(() =>
            {
                t0 = Stopwatch.GetTimestamp();
                StopFaultThread(faultThread);
                ReleaseProtection();
                _releasedAt = Stopwatch.GetTimestamp();
                if (_trackingLost) return;
                var seed = _writtenSinceFreeze!;
                if (!linkWritten && _changed is { } changed) PageBitmap.UnionInto(seed, changed);
                _tracker!.Resume(seed);
                _handoverPause = Stopwatch.GetElapsedTime(t0);
            }, TimeSpan.FromSeconds(3));
        }
        catch (Exception e) when (e is LinuxException or SnapshotException or ChangeTrackingException or TimeoutException or InvalidOperationException)
        {
            _log.LogWarning("change tracking could not resume after the snapshot ({Error}); the next snapshot is a full one", e.Message);
        }
        if (!ran)
        {
            StopFaultThread(faultThread);
            ReleaseProtection();
            _trackingLost = true;
            if (_releasedAt == 0) _releasedAt = Stopwatch.GetTimestamp();
        }
    }

    private void Fail(Exception e)
    {
        // After a cancel, interrupted writes and waits are its echo, not a failure of their own.
        if (e is OperationCanceledException && Job.CancellationToken.IsCancellationRequested) return;
        Interlocked.CompareExchange(ref _error, e, null);
        Job.Cancel();
    }

    /// <param name="handedOver">tracked snapshots: the RAM is back with the tracker (protection is gone already)</param>
    private void Finish(bool handedOver)
    {
        long writeDone = Stopwatch.GetTimestamp();
        bool cancelled = Job.CancellationToken.IsCancellationRequested && _error is null;
        var error = _error;
        if (error is null && !cancelled && _saver.States.Any(s => s.SavedCount != s.PageCount))
            error = new SnapshotException("internal error: not every page was saved");
        if (!handedOver) ReleaseProtection();
        if (error is null && !cancelled)
        {
            try { _sink.Complete(_sections); }
            catch (Exception e) { error = e; }
        }
        bool written = error is null && !cancelled;
        // Handed over as if the link would be written: it was not, so its changed set joins the next one.
        if (handedOver && !written && _changed is not null && !_trackingLost)
        {
            try { _tracker!.Include(_changed); }
            catch (Exception e) when (e is ArgumentException or ObjectDisposedException) { _log.LogWarning("could not keep the changed set: {Error}", e.Message); }
        }
        if (error is not null || cancelled)
        {
            try { _sink.Abort(); } catch (Exception e) { _log.LogWarning(e, "could not remove the partial snapshot"); }
        }
        Dispose(); // both threads are done: the fault thread was joined before the protection was released
        long resumedAt = Volatile.Read(ref _resumedAt);
        Job.Finish(new SnapshotResult
        {
            Engine = "write-tracking",
            Succeeded = error is null && !cancelled,
            Cancelled = cancelled,
            Error = error is null ? (cancelled ? "cancelled" : null) : Describe(error),
            PagesSaved = _sink.PagesWritten,
            ZeroPages = _sink.ZeroPages,
            ZeroPagesUnread = _saver.ZeroPagesUnread,
            BytesWritten = _sink.BytesWritten,
            FaultsServed = Interlocked.Read(ref _faults),
            Downtime = resumedAt == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_freezeStart, resumedAt),
            WriteTime = Stopwatch.GetElapsedTime(_start, writeDone),
            TotalTime = Stopwatch.GetElapsedTime(_start),
            FsyncTime = _sink.FsyncTime,
            ProtectedWindow = _releasedAt == 0 || _freezeStart == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_freezeStart, _releasedAt),
            FreezeMonotonicNs = SnapshotResult.MonotonicNs(_freezeStart),
            FaultStallP50 = _stalls.Percentile(50),
            FaultStallP99 = _stalls.Percentile(99),
            FaultStallMax = _stalls.Max,
            FaultStallSamplesUs = _stalls.SamplesMicroseconds(),
            SlowFaultPhases = _stalls.SlowestPhases(99) is [var copy, var wait, var unprotect] ? new FaultPhases(copy, wait, unprotect) : null,
            FaultBufferWaits = _blockWriter.BufferWaits,
            RealtimeFaultThread = _realtime,
            FaultBufferWaitTime = _blockWriter.BufferWaitTime,
            DowntimeBreakdown = _freezeBreakdown,
            SnapshotId = _sink.SnapshotId,
            TrailerChecksum = written ? _sink.TrailerChecksum : 0,
            Incremental = _changed is not null,
            ChangedPages = _changedPages,
            HandoverPause = _handoverPause,
        });
    }

    internal static string Describe(Exception e) => e switch
    {
        LinuxException { Errno: Errno.ENOSPC } or LinuxException { Errno: Errno.EDQUOT } => "the destination is full: " + e.Message,
        // .NET's FileStream reports ENOSPC as an IOException whose HResult is the errno.
        IOException io when io.HResult == (int)Errno.ENOSPC || io.HResult == (int)Errno.EDQUOT => "the destination is full: " + io.Message,
        _ => e.Message,
    };

    /// <summary>Frees the fault loop and the fault-block writer (drained first); the userfaultfd went with the protection.</summary>
    public void Dispose()
    {
        _loop?.Dispose();
        _loop = null;
        _userfaultHold?.Dispose();
        _blockWriter.Dispose();
        _knownZero?.Dispose();
        _knownZero = null;
    }

    /// <summary>Un-protects all RAM (waking any blocked writer) and unregisters; used on success, cancel and failure.</summary>
    private void ReleaseProtection()
    {
        if (_uffd is null) return;
        if (!_registered)
        {
            _uffd.Dispose();
            _uffd = null;
            return;
        }
        UnprotectAll();
        foreach (var r in _memory.Regions)
        {
            try { r.UnregisterFrom(_uffd); }
            catch (LinuxException e) { _log.LogError(e, "could not unregister guest RAM from userfaultfd"); }
        }
        _uffd.Dispose();
        _uffd = null;
    }
}
