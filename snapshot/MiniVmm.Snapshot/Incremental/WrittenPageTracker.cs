using KvmSharp;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Userfault;

namespace MiniVmm.Snapshot.Incremental;

/// <summary>
/// Tracks the pages a VM writes between snapshots with no fault handler at all: guest RAM is registered with a
/// userfaultfd in asynchronous write-protect mode (UFFD_FEATURE_WP_ASYNC) and protected whole, so the kernel itself
/// un-protects a page at its first write and the written state sits in the page tables until PAGEMAP_SCAN reads it.
/// The writer pays one in-kernel fault per page and tracking period; nothing runs in between.
/// <para>
/// Measured on Linux 6.18: a write into a protected transparent huge page splits its PMD and marks the one 4 KiB page
/// (the rest stays protected), so the set stays exact. The cost sits at the pauses: un-registering (in
/// <see cref="TakeChanged"/>) and protecting (in <see cref="Resume"/>) each walk every page-table entry, about 40 ms per
/// 2 GiB of 4 KiB-mapped RAM; the scans themselves take 1 to 7 ms.
/// </para>
/// </summary>
public sealed class WrittenPageTracker : IChangeTracker, IDisposable
{
    /// <summary>WP_UNPOPULATED: never-touched pages are protected too (else their first write would go unseen).</summary>
    public const UffdFeatures RequiredFeatures =
        UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated | UffdFeatures.WpAsync;

    private readonly GuestMemory _memory;
    private readonly PageMapScanner _scanner;
    private readonly Lock _lock = new();
    private UserfaultFd? _uffd;            // non-null while tracking
    private PageBitmap[] _seed;
    private bool _disposed;

    private WrittenPageTracker(GuestMemory memory, PageMapScanner scanner)
    {
        _memory = memory;
        _scanner = scanner;
        _seed = EmptyBitmaps();
    }

    public string Method => "userfaultfd WP_ASYNC + PAGEMAP_SCAN";

    private bool IsTrackingLocked => _uffd is not null;

    /// <summary>True between creation or <see cref="Resume"/> and <see cref="TakeChanged"/>.</summary>
    public bool IsTracking
    {
        get { lock (_lock) return _uffd is not null; }
    }

    /// <summary>
    /// Starts tracking all of <paramref name="memory"/> now (nothing counts as written yet), or with
    /// <paramref name="startTracking"/> false leaves it idle until the first <see cref="Resume"/> (the RAM may still
    /// belong to another userfaultfd, e.g. a lazy restore's).
    /// </summary>
    /// <exception cref="ChangeTrackingException">The host or the memory cannot be tracked this way; the message says why.</exception>
    public static WrittenPageTracker Create(GuestMemory memory, bool startTracking = true)
    {
        if (memory.IsFileBacked)
            throw new ChangeTrackingException("change tracking needs anonymous guest RAM; this VM's RAM is a private mapping of " +
                "its snapshot file (restored with --memory mmap), which userfaultfd cannot write-protect");
        if (!PageMapScanner.IsSupported(out string? why))
            throw new ChangeTrackingException("change tracking with PAGEMAP_SCAN is unavailable: " + why);
        PageMapScanner scanner;
        try { scanner = new PageMapScanner(); }
        catch (LinuxException e) { throw new ChangeTrackingException("cannot open /proc/self/pagemap: " + e.Message, e); }
        var tracker = new WrittenPageTracker(memory, scanner);
        try
        {
            // While the guest may still run, map the huge zero page into never-touched 2 MiB areas of THP memory: each
            // is then protected as one entry instead of a page table of 512 markers (as the write-tracking engine does).
            if (!startTracking) return tracker;
            foreach (var r in memory.Regions) r.TouchForRead(2UL << 20);
            tracker.StartTracking();
            return tracker;
        }
        catch
        {
            tracker.Dispose();
            throw;
        }
    }

    /// <summary><see cref="Create"/> that returns null and the reason instead of throwing.</summary>
    public static WrittenPageTracker? TryCreate(GuestMemory memory, out string? why)
    {
        try
        {
            why = null;
            return Create(memory);
        }
        catch (ChangeTrackingException e)
        {
            why = e.Message;
            return null;
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// A page counts as changed when written (or read back in after a discard) since tracking started, when it was
    /// discarded (MADV_DONTNEED) and not touched since, or when it is in the seed. On a scan failure the RAM is
    /// released all the same and a <see cref="ChangeTrackingException"/> says the changed set is unknown (take a full one).
    /// </remarks>
    public PageBitmap[] TakeChanged()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_uffd is null) throw new InvalidOperationException("the tracker is not tracking (TakeChanged without Resume)");
            var changed = _seed;
            try
            {
                try
                {
                    foreach (var r in _memory.Regions)
                    {
                        var sink = new BitmapSink(changed[r.Index]);
                        r.Scan(_scanner, PageScanQuery.Written(), ref sink);
                        // Discarded pages: 6.18 already reports an empty entry as written; the second scan (at most
                        // 2.5 ms per 2 GiB) keeps them counted on kernels where an empty entry has no category.
                        r.Scan(_scanner, PageScanQuery.Empty, ref sink);
                    }
                }
                finally
                {
                    // Scanned first: un-registering clears every protection, after which all pages would read as written.
                    Release();
                }
            }
            catch (LinuxException e)
            {
                throw new ChangeTrackingException("cannot read the pages written since the last snapshot (take a full one): " + e.Message, e);
            }
            _seed = EmptyBitmaps();
            return changed;
        }
    }

    /// <inheritdoc />
    public void Include(PageBitmap[] pages)
    {
        lock (_lock)
        {
            if (!_disposed && IsTrackingLocked) PageBitmap.UnionInto(_seed, pages);
        }
    }

    /// <inheritdoc />
    public void Resume(PageBitmap[] alreadyWritten)
    {
        ArgumentNullException.ThrowIfNull(alreadyWritten);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_uffd is not null) throw new InvalidOperationException("the tracker is already tracking (Resume twice)");
            var seed = EmptyBitmaps();
            // Copied: the caller keeps its bitmaps, and later writes to them must not leak into this period's set.
            PageBitmap.UnionInto(seed, alreadyWritten);
            StartTracking();
            _seed = seed;
        }
    }

    /// <summary>Stops tracking (if it was) and releases guest RAM; idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            try { Release(); }
            catch (LinuxException) { } // the fd is closed all the same, which releases every range
            finally { _scanner.Dispose(); }
        }
    }

    /// <summary>A new userfaultfd over every region, all of it protected. Leaves nothing registered when it fails.</summary>
    private void StartTracking()
    {
        UserfaultFd? uffd = null;
        try
        {
            uffd = UserfaultFd.Create(RequiredFeatures, DescribeFeatures);
            foreach (var r in _memory.Regions)
            {
                var operations = r.RegisterWith(uffd, UffdRegisterMode.WriteProtect);
                if ((operations & UffdRangeOperations.WriteProtect) == 0)
                    throw new ChangeTrackingException("guest RAM cannot be write-protected through userfaultfd (UFFDIO_WRITEPROTECT unsupported for this memory)");
            }
            foreach (var r in _memory.Regions) r.WriteProtectAll(uffd, protect: true);
            _uffd = uffd;
        }
        catch (LinuxException e)
        {
            uffd?.Dispose();
            throw new ChangeTrackingException("cannot start tracking written pages: " + e.Message, e);
        }
        catch
        {
            uffd?.Dispose();
            throw;
        }
    }

    /// <summary>Un-registers and closes the userfaultfd, so a snapshot can register the RAM with its own.</summary>
    private void Release()
    {
        var uffd = _uffd;
        if (uffd is null) return;
        _uffd = null;
        try
        {
            foreach (var r in _memory.Regions) r.UnregisterFrom(uffd);
        }
        finally
        {
            // Closing un-registers whatever is left too; the explicit pass above only makes a failure visible.
            uffd.Dispose();
        }
    }

    private PageBitmap[] EmptyBitmaps() => PageBitmap.ForRegions(_memory.Regions.Select(r => r.PageCount));

    internal static string DescribeFeatures(UffdFeatures bits) => UffdFeatureNames.Describe(bits);

    /// <summary>Sets the pages of each reported run; a struct, so a scan allocates nothing.</summary>
    private readonly struct BitmapSink(PageBitmap bitmap) : IPageRunSink
    {
        public void OnRun(ulong offset, ulong length, ulong categories) =>
            bitmap.SetRange((long)(offset / GuestMemory.PageSize), (long)(length / GuestMemory.PageSize));
    }
}
