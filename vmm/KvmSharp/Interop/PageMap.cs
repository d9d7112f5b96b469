using System.Runtime.InteropServices;

namespace KvmSharp.Interop;

// <linux/fs.h> PAGEMAP_SCAN (Linux 6.7+), not in Debian 12's headers: an ioctl on /proc/PID/pagemap that walks page
// tables and reports (and optionally write-protects) runs of pages by category.
#pragma warning disable CS0649

/// <summary>struct pm_scan_arg (96 bytes). The kernel writes <c>walk_end</c> back: where the walk stopped.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct pm_scan_arg
{
    public ulong size;
    public ulong flags;
    public ulong start;
    public ulong end;
    public ulong walk_end;
    public ulong vec;
    public ulong vec_len;
    public ulong max_pages;
    public ulong category_inverted;
    public ulong category_mask;
    public ulong category_anyof_mask;
    public ulong return_mask;
}

/// <summary>struct page_region (24 bytes): [start, end) with the categories (masked by return_mask) of all its pages.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct page_region
{
    public ulong start;
    public ulong end;
    public ulong categories;
}

internal static unsafe class PageMap
{
    public static readonly uint PAGEMAP_SCAN = Ioc.IOWR('f', 16, (uint)sizeof(pm_scan_arg));

    /// <summary>Write-protects the pages that matched (needs a WP_ASYNC userfaultfd on the range).</summary>
    public const ulong PM_SCAN_WP_MATCHING = 1UL << 0;
    /// <summary>Fails the scan with EPERM at the first page without userfaultfd asynchronous write protection.</summary>
    public const ulong PM_SCAN_CHECK_WPASYNC = 1UL << 1;

    public const ulong PAGE_IS_WPALLOWED = 1UL << 0;
    /// <summary>Written since it was write-protected (only meaningful under a WP_ASYNC userfaultfd).</summary>
    public const ulong PAGE_IS_WRITTEN = 1UL << 1;
    public const ulong PAGE_IS_FILE = 1UL << 2;
    public const ulong PAGE_IS_PRESENT = 1UL << 3;
    /// <summary>A non-present entry that is not empty: swapped out, or a userfaultfd write-protect marker.</summary>
    public const ulong PAGE_IS_SWAPPED = 1UL << 4;
    public const ulong PAGE_IS_PFNZERO = 1UL << 5;
    public const ulong PAGE_IS_HUGE = 1UL << 6;
    /// <summary>Linux 6.9+.</summary>
    public const ulong PAGE_IS_SOFT_DIRTY = 1UL << 7;
}
