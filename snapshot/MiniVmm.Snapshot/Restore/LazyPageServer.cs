using System.Diagnostics;
using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Userfault;

namespace MiniVmm.Snapshot.Restore;

/// <summary>
/// Lazy restore: guest RAM starts empty (anonymous, registered with a userfaultfd in MISSING mode) and each page is
/// installed from the snapshot on first touch (UFFDIO_COPY; UFFDIO_ZEROPAGE for zero pages), checksum verified before
/// the guest can see it. Where guest RAM uses transparent huge pages and the kernel has UFFDIO_MOVE, a whole 2 MiB
/// block is filled in a huge-page staging area and moved in at once, so the guest gets huge pages as after an eager
/// restore. A background prefetcher installs the rest — a recorded working set first. Races between the
/// fault handler and the prefetcher end in EEXIST, which is harmless. If a page cannot be served (corrupt file, I/O
/// error) the VM is stopped through <c>onFatal</c> (message, whether the file is to blame) instead of being left blocked or handed wrong data.
/// </summary>
public sealed class LazyPageServer : IGuestMemoryBackend
{
    private const int FaultAroundPages = 16;
    private const int PrefetchBatchPages = 64;
    private const int MaxWindowPages = 512;
    private const long HugeBlockPages = HugePageStaging.Size / (long)GuestMemory.PageSize;
    private long _window = FaultAroundPages, _sequentialNext = -1; // fault thread only

    private readonly ISnapshotPages _file;
    private readonly GuestMemory _memory;
    private readonly ILogger _log;
    private readonly Action<string, bool> _onFatal;
    private readonly byte[][] _populated;
    private readonly UserfaultFd _uffd;
    private readonly UserfaultLoop _loop;
    private readonly List<ulong> _recorded;
    private readonly object _recordGate = new();
    private readonly CancellationTokenSource _cancel = new();
    private Thread? _faultThread, _prefetchThread;
    private long _faultPages, _prefetchedPages, _remaining;
    private volatile bool _recording;
    private IReadOnlyList<ulong> _prefetchFirst = [];
    private readonly ManualResetEventSlim _prefetchGo = new();
    private readonly ManualResetEventSlim _guestRunning = new();
    private string? _failure;
    private readonly bool[] _hugeBlocks; // per region: install whole 2 MiB blocks with UFFDIO_MOVE
    private readonly Stack<HugePageStaging> _freeStaging = new(4); // lock it; one area per installing thread
    private readonly List<HugePageStaging> _allStaging = new(4);   // every area, for Dispose
    private long _hugeBlocksMoved;
    private bool _detached; // MakeResident finished: RAM is no longer registered here
    private readonly IDisposable _userfaultHold; // host accesses fault pages in from a system call while pages may be missing

    [ThreadStatic] private static byte[]? t_buffer;

    /// <param name="hugePages">guest RAM is THP-backed (the VM's --huge-pages): install 2 MiB blocks where possible.</param>
    public LazyPageServer(ISnapshotPages file, GuestMemory memory, ILogger log, Action<string, bool> onFatal, bool hugePages = true)
    {
        _file = file;
        _memory = memory;
        _log = log;
        _onFatal = onFatal;
        _populated = memory.Regions.Select(r => new byte[r.PageCount]).ToArray();
        _remaining = memory.Regions.Sum(r => r.PageCount);
        _recorded = new List<ulong>();
        _uffd = UserfaultFd.Create(UffdFeatures.ThreadId, optionalFeatures: hugePages ? UffdFeatures.Move : UffdFeatures.None,
            UffdFeatureNames.Describe);
        bool canMove = (_uffd.Features & UffdFeatures.Move) != 0;
        _hugeBlocks = memory.Regions.Select(r => canMove && r.IsHostAligned(HugePageStaging.Size)).ToArray();
        try
        {
            foreach (var r in memory.Regions) r.RegisterWith(_uffd, UffdRegisterMode.Missing);
            _loop = new UserfaultLoop(_uffd, memory, batch: 32);
            _userfaultHold = memory.HoldForUserfaults();
        }
        catch
        {
            _uffd.Dispose(); // closing it un-registers whatever was registered
            throw;
        }
    }

    public long PagesServedOnFault => Interlocked.Read(ref _faultPages);
    public long PagesPrefetched => Interlocked.Read(ref _prefetchedPages);

    /// <summary>2 MiB blocks installed whole (as huge pages) with UFFDIO_MOVE.</summary>
    public long HugeBlocksMoved => Interlocked.Read(ref _hugeBlocksMoved);
    public bool IsComplete => Interlocked.Read(ref _remaining) == 0;
    public string? Failure => Volatile.Read(ref _failure);

    /// <summary>Raised (on the prefetch thread) when every page is installed; the userfaultfd is no longer needed.</summary>
    public event Action? Completed;

    /// <summary>Raised (on a timer thread) when working-set recording ends, with the pages in first-touch order.</summary>
    public event Action<IReadOnlyList<ulong>>? RecordingFinished;

    /// <summary>
    /// Starts serving faults. <paramref name="prefetchFirst"/> (guest page numbers, in order) is installed before the
    /// rest; with <paramref name="recordFor"/> set, the prefetcher waits that long and the pages the guest touches
    /// meanwhile are recorded, in order, as its working set.
    /// </summary>
    public void Start(IReadOnlyList<ulong>? prefetchFirst, TimeSpan? recordFor, bool backgroundPrefetch = true)
    {
        _prefetchFirst = prefetchFirst ?? [];
        _recording = recordFor is not null;
        if (_recording) _recorded.Capacity = (int)Math.Min(_remaining, int.MaxValue); // no growth on the fault thread
        if (_hugeBlocks.Any(b => b))
            for (int i = 0; i < 2; i++) // the fault thread's and the prefetcher's, so that neither maps one while serving
            {
                var staging = new HugePageStaging();
                _allStaging.Add(staging);
                _freeStaging.Push(staging);
            }
        _faultThread = new Thread(FaultLoop) { Name = "lazy-faults", IsBackground = true };
        _faultThread.Start();
        if (backgroundPrefetch)
        {
            _prefetchThread = new Thread(PrefetchLoop) { Name = "lazy-prefetch", IsBackground = true };
            _prefetchThread.Start();
        }
        if (recordFor is { } d)
        {
            var timer = new Timer(_ =>
            {
                _recording = false;
                _prefetchGo.Set();
                try { RecordingFinished?.Invoke(RecordedWorkingSet); }
                catch (Exception e) { _log.LogError(e, "could not save the working set"); }
            }, null, d, Timeout.InfiniteTimeSpan);
            _cancel.Token.Register(() => timer.Dispose());
        }
        else _prefetchGo.Set();
    }

    /// <summary>
    /// Lets the background prefetcher begin; the VM calls it once its vCPUs run. The prefetcher keeps a core busy with
    /// reads and copies, and starting it earlier competed with the last steps of VM start-up on small hosts (a restore
    /// reached its first instruction ~7 ms later than with --memory mmap). Faults are served from Start on regardless.
    /// </summary>
    public void GuestStarted() => _guestRunning.Set();

    /// <summary>The guest pages touched while recording, in first-touch order.</summary>
    public IReadOnlyList<ulong> RecordedWorkingSet
    {
        get { lock (_recordGate) return _recorded.ToArray(); }
    }

    /// <summary>
    /// Installs every page still missing (from the calling thread, alongside the prefetcher), then unregisters guest
    /// RAM from this userfaultfd. A live snapshot of a lazily restored VM calls this first: a range can belong to one
    /// userfaultfd only, and write tracking needs its own; the guest keeps running meanwhile, so no downtime is added.
    /// </summary>
    public void MakeResident()
    {
        if (_detached) return;
        for (int ri = 0; ri < _memory.Regions.Count; ri++)
            for (long first = 0; first < _memory.Regions[ri].PageCount; first += PrefetchBatchPages)
                Serve(ri, first, Math.Min(PrefetchBatchPages, _memory.Regions[ri].PageCount - first), fromFault: false);
        if (Failure is { } failure) throw new InvalidOperationException(failure);
        StopThreads();
        foreach (var r in _memory.Regions) r.UnregisterFrom(_uffd);
        _detached = true;
        _userfaultHold.Dispose();
        _log.LogInformation("lazy restore completed early for a snapshot: {Fault} pages on fault, {Prefetched} prefetched", PagesServedOnFault, PagesPrefetched);
    }

    private void FaultLoop()
    {
        try { _loop.Run(OnFault, () => _cancel.IsCancellationRequested || (IsComplete && _prefetchThread is not null)); }
        catch (Exception e) { Fatal(e); }
    }

    private void OnFault(int ri, long page, long readAt)
    {
        var r = _memory.Regions[ri];
        if (_recording && Volatile.Read(ref _populated[ri][page]) == 0)
            lock (_recordGate) _recorded.Add(r.GuestAddress.PageNumber + (ulong)page);
        long first = page & ~(long)(FaultAroundPages - 1);
        // A guest streaming through memory faults where the last window ended: double the window (up to 2 MiB),
        // as read-ahead does, so it waits for one fault per huge page instead of 32.
        _window = first == _sequentialNext ? Math.Min(_window * 2, MaxWindowPages) : FaultAroundPages;
        long count = Math.Min(_window, r.PageCount - first);
        _sequentialNext = first + count;
        Serve(ri, first, count, fromFault: true);
        // A racing installer may have won (EEXIST): make sure the faulting thread is woken either way.
        r.Wake(_uffd, page, 1);
    }

    private void PrefetchLoop()
    {
        try
        {
            _guestRunning.Wait(_cancel.Token);
            _prefetchGo.Wait(_cancel.Token);
            foreach (ulong gpaPage in _prefetchFirst)
            {
                if (_cancel.IsCancellationRequested) return;
                if (_memory.TryFind(new GuestAddress(gpaPage << 12), GuestMemory.PageSize, out var r, out ulong offset))
                {
                    long page = (long)(offset / GuestMemory.PageSize);
                    long first = page & ~(long)(FaultAroundPages - 1);
                    Serve(r.Index, first, Math.Min(FaultAroundPages, r.PageCount - first), fromFault: false);
                }
            }
            for (int ri = 0; ri < _memory.Regions.Count; ri++)
                for (long first = 0; first < _memory.Regions[ri].PageCount; first += PrefetchBatchPages)
                {
                    if (_cancel.IsCancellationRequested) return;
                    Serve(ri, first, Math.Min(PrefetchBatchPages, _memory.Regions[ri].PageCount - first), fromFault: false);
                }
            _log.LogInformation("lazy restore complete: {Fault} pages installed on fault, {Prefetched} prefetched, {Huge} 2 MiB blocks as huge pages",
                PagesServedOnFault, PagesPrefetched, HugeBlocksMoved);
            _userfaultHold.Dispose(); // every page is in: no access can fault into this userfaultfd any more
            Completed?.Invoke();
        }
        catch (OperationCanceledException) { }
        catch (Exception e) { Fatal(e); }
    }

    /// <summary>
    /// Installs the missing pages of [first, first+count): each untouched 2 MiB block around them whole (huge pages),
    /// otherwise present runs by UFFDIO_COPY and zero runs by UFFDIO_ZEROPAGE.
    /// </summary>
    private void Serve(int region, long first, long count, bool fromFault)
    {
        var populated = _populated[region];
        long end = first + count;
        if (_hugeBlocks[region])
            for (long block = first & ~(HugeBlockPages - 1); block < end; block += HugeBlockPages)
                if (block + HugeBlockPages <= populated.Length && IsUntouched(populated, block) && HasData(region, block))
                    InstallHugeBlock(region, block, fromFault);
        long p = first;
        while (p < end)
        {
            if (Volatile.Read(ref populated[p]) != 0) { p++; continue; }
            bool present = _file.IsPresent(region, p);
            long run = p + 1;
            while (run < end && run - p < PrefetchBatchPages && Volatile.Read(ref populated[run]) == 0 && _file.IsPresent(region, run) == present) run++;
            Install(region, p, run - p, present, fromFault);
            p = run;
        }
    }

    /// <summary>All-zero blocks stay on UFFDIO_ZEROPAGE: the shared zero page costs no memory until the guest writes.</summary>
    private bool HasData(int region, long block)
    {
        for (long q = block; q < block + HugeBlockPages; q++)
            if (_file.IsPresent(region, q)) return true;
        return false;
    }

    private static bool IsUntouched(byte[] populated, long block)
    {
        for (long q = block; q < block + HugeBlockPages; q++)
            if (Volatile.Read(ref populated[q]) != 0) return false;
        return true;
    }

    /// <summary>
    /// Fills a huge-page staging area with one 2 MiB block (present pages read and checksum-verified, the others
    /// zeroed) and moves it into guest RAM. If another installer got to part of the block first (EEXIST) or the move
    /// stops part-way, the rest is copied from the staging area page by page instead, skipping installed pages.
    /// </summary>
    private void InstallHugeBlock(int region, long block, bool fromFault)
    {
        HugePageStaging? staging;
        lock (_freeStaging)
        {
            if (!_freeStaging.TryPop(out staging)) // a third installer (MakeResident's caller) gets its own
            {
                staging = new HugePageStaging();
                _allStaging.Add(staging);
            }
        }
        try
        {
            var span = staging.Span;
            for (long p = block; p < block + HugeBlockPages;)
            {
                bool present = _file.IsPresent(region, p);
                long run = p + 1;
                while (run < block + HugeBlockPages && _file.IsPresent(region, run) == present) run++;
                var part = span.Slice((int)((p - block) * (long)GuestMemory.PageSize), (int)((run - p) * (long)GuestMemory.PageSize));
                if (present) _file.ReadPages(region, p, part, verifyChecksum: true); // throws on a corrupt page: before the guest sees it
                else part.Clear();
                p = run;
            }
            var moved = _memory.Regions[region].TryMoveIn(_uffd, block, staging);
            if (moved.Bytes == HugePageStaging.Size) Interlocked.Increment(ref _hugeBlocksMoved);
            else
            {
                int done = (int)moved.Bytes;
                CopyWithRetry(region, (ulong)block * GuestMemory.PageSize + (ulong)done, span[done..]);
                staging.Discard();
            }
            MarkPopulated(region, block, HugeBlockPages, fromFault);
        }
        finally { lock (_freeStaging) _freeStaging.Push(staging); }
    }

    private void Install(int region, long first, long count, bool present, bool fromFault)
    {
        ulong offset = (ulong)first * GuestMemory.PageSize;
        ulong length = (ulong)count * GuestMemory.PageSize;
        if (present)
        {
            var buffer = t_buffer ??= new byte[PrefetchBatchPages * (int)GuestMemory.PageSize];
            var span = buffer.AsSpan(0, (int)length);
            _file.ReadPages(region, first, span, verifyChecksum: true); // throws on a corrupt page: before the guest sees it
            CopyWithRetry(region, offset, span);
        }
        else ZeroWithRetry(region, offset, length);
        MarkPopulated(region, first, count, fromFault);
    }

    private void MarkPopulated(int region, long first, long count, bool fromFault)
    {
        // Pages skipped with EEXIST were installed by someone else: they count as populated too.
        for (long q = first; q < first + count; q++)
        {
            if (Interlocked.Exchange(ref _populated[region][q], 1) == 0)
            {
                Interlocked.Decrement(ref _remaining);
                if (fromFault) Interlocked.Increment(ref _faultPages); else Interlocked.Increment(ref _prefetchedPages);
            }
        }
    }

    /// <summary>UFFDIO_COPY until all of <paramref name="source"/> is in; pages another installer put there first are skipped.</summary>
    private void CopyWithRetry(int region, ulong offset, ReadOnlySpan<byte> source)
    {
        var r = _memory.Regions[region];
        int done = 0;
        while (done < source.Length)
        {
            var result = r.TryCopy(_uffd, offset + (ulong)done, source[done..]);
            done += Advance(result, "UFFDIO_COPY");
        }
    }

    private void ZeroWithRetry(int region, ulong offset, ulong length)
    {
        var r = _memory.Regions[region];
        ulong done = 0;
        while (done < length)
        {
            var result = r.TryZeroPage(_uffd, offset + done, length - done);
            done += (ulong)Advance(result, "UFFDIO_ZEROPAGE");
        }
    }

    /// <summary>How far an install got: its progress, nothing for a retry (EAGAIN), a page for one already in (EEXIST).</summary>
    private static int Advance(UffdResult result, string operation)
    {
        if (result.Bytes > 0) return (int)result.Bytes;
        return result.Error switch
        {
            Errno.EAGAIN => 0,
            Errno.EEXIST => (int)GuestMemory.PageSize,
            Errno.None => throw new InvalidOperationException($"internal error: {operation} succeeded without installing anything"),
            var errno => throw new LinuxException(operation, errno),
        };
    }

    private void Fatal(Exception e)
    {
        string message = e is SnapshotFormatException ? e.Message : "lazy restore failed: " + e.Message;
        if (Interlocked.CompareExchange(ref _failure, message, null) is null)
        {
            _log.LogError("{Message}", message);
            _cancel.Cancel();
            _onFatal(message, e is SnapshotFormatException or IOException);
        }
    }

    /// <summary>
    /// After a failure (see <see cref="Failure"/>) and once the caller has kicked every vCPU: unregisters guest RAM,
    /// which wakes every thread blocked on a page that will never be served (the fault then resolves as ordinary
    /// anonymous memory, which no vCPU with a stop pending runs on). No-op while serving normally.
    /// </summary>
    public void ReleaseFaultsAfterFailure()
    {
        if (Failure is null || _detached) return;
        foreach (var r in _memory.Regions)
        {
            try { r.UnregisterFrom(_uffd); }
            catch (Exception e) when (e is LinuxException or ObjectDisposedException) { _log.LogDebug(e, "unregister after failure"); }
        }
        _userfaultHold.Dispose(); // nothing is served any more: an access now finds plain anonymous memory
    }

    /// <summary>Stops the fault and prefetch threads; false when one of them did not stop in time.</summary>
    private bool StopThreads()
    {
        _cancel.Cancel();
        _loop.Stop();
        _prefetchGo.Set();
        _guestRunning.Set();
        bool stopped = _faultThread?.Join(TimeSpan.FromSeconds(5)) ?? true;
        stopped &= _prefetchThread?.Join(TimeSpan.FromSeconds(5)) ?? true;
        return stopped;
    }

    /// <summary>
    /// Stops the threads, then closes the userfaultfd (un-registering guest RAM) and frees the staging areas. A thread that
    /// does not stop (stuck in a read of the snapshot) keeps them: they are left to the process rather than freed under it.
    /// </summary>
    public void Dispose()
    {
        if (!StopThreads())
        {
            _log.LogCritical("internal error: a lazy-restore thread did not stop within 5 s; its userfaultfd and buffers are left open");
            return;
        }
        _loop.Dispose();
        _uffd.Dispose();
        _userfaultHold.Dispose();
        foreach (var staging in _allStaging) staging.Dispose();
    }
}
