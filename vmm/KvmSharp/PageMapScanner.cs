using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>Receives the runs a <see cref="PageMapScanner"/> finds: byte offsets from the scan start, page aligned.</summary>
public interface IPageRunSink
{
    void OnRun(ulong offset, ulong length, ulong categories);
}

/// <summary>
/// Which pages a PAGEMAP_SCAN reports: those whose categories, after XOR with <see cref="CategoryInverted"/>, include
/// all of <see cref="CategoryMask"/> and (when non-zero) one of <see cref="CategoryAnyOfMask"/>. A run carries the
/// categories of <see cref="ReturnMask"/>; neighbouring pages with equal returned categories form one run.
/// </summary>
public readonly record struct PageScanQuery(
    ulong Flags, ulong CategoryMask, ulong CategoryInverted = 0, ulong CategoryAnyOfMask = 0, ulong ReturnMask = 0)
{
    /// <summary>
    /// Pages written since they were write-protected through a WP_ASYNC userfaultfd. The scan fails (EPERM) on any
    /// page outside such a registration rather than report it as written. <paramref name="reprotect"/> write-protects
    /// what it reports in the same walk, so a write can never fall between report and protection.
    /// </summary>
    public static PageScanQuery Written(bool reprotect = false) => new(
        PageMap.PM_SCAN_CHECK_WPASYNC | (reprotect ? PageMap.PM_SCAN_WP_MATCHING : 0),
        CategoryMask: PageMap.PAGE_IS_WRITTEN, ReturnMask: PageMap.PAGE_IS_WRITTEN);

    /// <summary>
    /// Pages whose entry maps the shared zero page (4 KiB, or the huge zero page for a whole PMD): they read as zeros
    /// and a write to them faults first, so their content is known without reading them.
    /// </summary>
    public static PageScanQuery ZeroPage { get; } = new(
        0, CategoryMask: PageMap.PAGE_IS_PRESENT | PageMap.PAGE_IS_PFNZERO, ReturnMask: PageMap.PAGE_IS_PFNZERO);

    /// <summary>Pages mapped by a huge page (a transparent huge page's PMD).</summary>
    public static PageScanQuery Huge { get; } = new(0, CategoryMask: PageMap.PAGE_IS_HUGE, ReturnMask: PageMap.PAGE_IS_HUGE);

    /// <summary>
    /// Pages with an empty page-table entry (or no page table): neither present nor swapped out nor holding a
    /// userfaultfd write-protect marker. Under a WP_UNPOPULATED protection of the whole range, such a page was
    /// discarded (MADV_DONTNEED) after the protection: a zap of anonymous memory drops the marker with the page.
    /// (Linux 6.18 also reports such an entry as <see cref="PageMap.PAGE_IS_WRITTEN"/>.)
    /// </summary>
    public static PageScanQuery Empty { get; } = new(
        PageMap.PM_SCAN_CHECK_WPASYNC,
        CategoryMask: PageMap.PAGE_IS_PRESENT | PageMap.PAGE_IS_SWAPPED,
        CategoryInverted: PageMap.PAGE_IS_PRESENT | PageMap.PAGE_IS_SWAPPED,
        ReturnMask: PageMap.PAGE_IS_PRESENT | PageMap.PAGE_IS_SWAPPED);
}

/// <summary>
/// Owns an fd of /proc/self/pagemap and the output vector of its PAGEMAP_SCAN ioctl (Linux 6.7+). Scans allocate
/// nothing: runs go to a caller's <see cref="IPageRunSink"/>. One scan at a time (the vector is shared).
/// </summary>
public sealed unsafe class PageMapScanner : IDisposable
{
    public const int DefaultCapacity = 1024;
    private const ulong PageSize = 4096;
    private readonly page_region[] _vec;

    /// <param name="capacity">Runs per ioctl; more runs than this cost one more ioctl each batch, nothing else.</param>
    public PageMapScanner(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Handle = FileDescriptor.Open("/proc/self/pagemap", Libc.O_RDONLY | Libc.O_CLOEXEC, "open(/proc/self/pagemap)");
        // Pinned once, so the kernel can write into it without a fixed per call and the GC never moves it.
        _vec = GC.AllocateArray<page_region>(capacity, pinned: true);
    }

    private FileDescriptor Handle { get; }

    /// <summary>True when this kernel has PAGEMAP_SCAN; otherwise <paramref name="why"/> says what is missing.</summary>
    public static bool IsSupported(out string? why)
    {
        try
        {
            using var scanner = new PageMapScanner(1);
            // An empty range: the kernel validates the argument and walks nothing.
            var arg = new pm_scan_arg { size = (ulong)sizeof(pm_scan_arg) };
            if (Libc.ioctl(scanner.Handle, PageMap.PAGEMAP_SCAN, &arg) < 0)
                throw Failure(LastErrno.Get(), arg.flags);
            why = null;
            return true;
        }
        catch (LinuxException e)
        {
            why = e.Message;
            return false;
        }
    }

    /// <summary>
    /// Reports the pages of the mapping that match <paramref name="query"/> to <paramref name="sink"/>, in
    /// address order, and returns how many pages matched. The kernel stops a walk when the vector is full; this
    /// continues from its <c>walk_end</c> until the range is done. A class or struct sink is called without boxing.
    /// </summary>
    public long Scan<TSink>(MemoryMapping mapping, in PageScanQuery query, ref TSink sink) where TSink : IPageRunSink
    {
        using var lease = mapping.Lease(0, mapping.Length);
        return Scan((nint)lease.Address, mapping.Length, query, ref sink);
    }

    /// <summary><see cref="Scan{TSink}(MemoryMapping, in PageScanQuery, ref TSink)"/> over a raw range (tests of odd ranges).</summary>
    internal long Scan<TSink>(nint start, ulong length, in PageScanQuery query, ref TSink sink) where TSink : IPageRunSink
    {
        ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
        ulong first = (ulong)start, end = first + length;
        if (first % PageSize != 0 || length % PageSize != 0 || end < first)
            throw new ArgumentException($"scan range 0x{first:x}+0x{length:x} is not page aligned or wraps");
        long pages = 0;
        fixed (page_region* vec = _vec)
        {
            for (ulong next = first; next < end;)
            {
                var arg = new pm_scan_arg
                {
                    size = (ulong)sizeof(pm_scan_arg), flags = query.Flags, start = next, end = end,
                    vec = (ulong)vec, vec_len = (ulong)_vec.Length,
                    category_inverted = query.CategoryInverted, category_mask = query.CategoryMask,
                    category_anyof_mask = query.CategoryAnyOfMask, return_mask = query.ReturnMask,
                };
                int n = Libc.ioctl(Handle, PageMap.PAGEMAP_SCAN, &arg);
                if (n < 0)
                {
                    Errno errno = LastErrno.Get();
                    // EINTR comes only with a fatal signal pending and EAGAIN not at all today; both are safe to
                    // retry from `next` for a read-only scan. A re-protecting walk may already have protected pages it
                    // could not report: retrying would lose them, so that is an error.
                    bool retry = errno is Errno.EINTR or Errno.EAGAIN;
                    if (retry && (query.Flags & PageMap.PM_SCAN_WP_MATCHING) == 0) continue;
                    throw Failure(errno, query.Flags);
                }
                for (int i = 0; i < n; i++)
                {
                    ulong runStart = vec[i].start, runEnd = vec[i].end;
                    sink.OnRun(runStart - first, runEnd - runStart, vec[i].categories);
                    pages += (long)((runEnd - runStart) / PageSize);
                }
                // walk_end == end once the range is done; before that it is where the full vector cut the walk.
                if (arg.walk_end <= next || arg.walk_end > end)
                    throw new LinuxException("PAGEMAP_SCAN", Errno.EINVAL,
                        $"the kernel's walk_end 0x{arg.walk_end:x} does not advance past 0x{next:x} (end 0x{end:x})");
                next = arg.walk_end;
            }
        }
        return pages;
    }

    /// <summary>A scan for <see cref="PageScanQuery.Written"/>.</summary>
    public long ScanWritten<TSink>(MemoryMapping mapping, bool reprotect, ref TSink sink) where TSink : IPageRunSink =>
        Scan(mapping, PageScanQuery.Written(reprotect), ref sink);

    private static LinuxException Failure(Errno errno, ulong flags) => errno switch
    {
        Errno.ENOTTY => new LinuxException("PAGEMAP_SCAN", errno, "PAGEMAP_SCAN on /proc/self/pagemap needs Linux 6.7+"),
        Errno.EPERM when (flags & (PageMap.PM_SCAN_CHECK_WPASYNC | PageMap.PM_SCAN_WP_MATCHING)) != 0 =>
            new LinuxException("PAGEMAP_SCAN", errno,
                "part of the range is not registered with a userfaultfd in UFFD_FEATURE_WP_ASYNC write-protect mode"),
        Errno.EINVAL => new LinuxException("PAGEMAP_SCAN", errno,
            "the kernel rejects the scan arguments (a flag or category newer than this kernel, e.g. PAGE_IS_SOFT_DIRTY needs 6.9+)"),
        _ => new LinuxException("PAGEMAP_SCAN", errno),
    };

    public void Dispose() => Handle.Dispose();
}
