using System.Runtime.InteropServices;

namespace KvmSharp.Interop;

// <linux/userfaultfd.h>, with the feature bits that Debian 12's headers lack.
#pragma warning disable CS0649

[StructLayout(LayoutKind.Sequential)]
internal struct uffdio_api
{
    public ulong api;
    public ulong features;
    public ulong ioctls;
}

[StructLayout(LayoutKind.Sequential)]
internal struct uffdio_range
{
    public ulong start;
    public ulong len;
}

[StructLayout(LayoutKind.Sequential)]
internal struct uffdio_register
{
    public uffdio_range range;
    public ulong mode;
    public ulong ioctls;
}

[StructLayout(LayoutKind.Sequential)]
internal struct uffdio_writeprotect
{
    public uffdio_range range;
    public ulong mode;
}

[StructLayout(LayoutKind.Sequential)]
internal struct uffdio_copy
{
    public ulong dst;
    public ulong src;
    public ulong len;
    public ulong mode;
    public long copy;
}

/// <summary>Not in Debian 12 headers (Linux 6.8+): moves pages (a whole transparent huge page when aligned) into a range.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct uffdio_move
{
    public ulong dst;
    public ulong src;
    public ulong len;
    public ulong mode;
    public long move;
}

[StructLayout(LayoutKind.Sequential)]
internal struct uffdio_zeropage
{
    public uffdio_range range;
    public ulong mode;
    public long zeropage;
}

internal static unsafe class Uffd
{
    public const uint UFFDIO = 0xAA;
    public const ulong UFFD_API = 0xAA;

    public static readonly uint UFFDIO_API = Ioc.IOWR(UFFDIO, 0x3F, (uint)sizeof(uffdio_api));
    public static readonly uint UFFDIO_REGISTER = Ioc.IOWR(UFFDIO, 0x00, (uint)sizeof(uffdio_register));
    public static readonly uint UFFDIO_UNREGISTER = Ioc.IOR(UFFDIO, 0x01, (uint)sizeof(uffdio_range));
    public static readonly uint UFFDIO_WAKE = Ioc.IOR(UFFDIO, 0x02, (uint)sizeof(uffdio_range));
    public static readonly uint UFFDIO_COPY = Ioc.IOWR(UFFDIO, 0x03, (uint)sizeof(uffdio_copy));
    public static readonly uint UFFDIO_ZEROPAGE = Ioc.IOWR(UFFDIO, 0x04, (uint)sizeof(uffdio_zeropage));
    public static readonly uint UFFDIO_MOVE = Ioc.IOWR(UFFDIO, 0x05, (uint)sizeof(uffdio_move));
    public static readonly uint UFFDIO_WRITEPROTECT = Ioc.IOWR(UFFDIO, 0x06, (uint)sizeof(uffdio_writeprotect));

    public const ulong UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1UL << 0;
    public const ulong UFFD_FEATURE_EVENT_FORK = 1UL << 1;
    public const ulong UFFD_FEATURE_EVENT_REMAP = 1UL << 2;
    public const ulong UFFD_FEATURE_EVENT_REMOVE = 1UL << 3;
    public const ulong UFFD_FEATURE_MISSING_HUGETLBFS = 1UL << 4;
    public const ulong UFFD_FEATURE_MISSING_SHMEM = 1UL << 5;
    public const ulong UFFD_FEATURE_EVENT_UNMAP = 1UL << 6;
    public const ulong UFFD_FEATURE_SIGBUS = 1UL << 7;
    public const ulong UFFD_FEATURE_THREAD_ID = 1UL << 8;
    public const ulong UFFD_FEATURE_MINOR_HUGETLBFS = 1UL << 9;
    public const ulong UFFD_FEATURE_MINOR_SHMEM = 1UL << 10;
    public const ulong UFFD_FEATURE_EXACT_ADDRESS = 1UL << 11;
    public const ulong UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1UL << 12;
    /// <summary>Not in Debian 12 headers (Linux 6.4+): WP also covers never-populated pages.</summary>
    public const ulong UFFD_FEATURE_WP_UNPOPULATED = 1UL << 13;
    public const ulong UFFD_FEATURE_POISON = 1UL << 14;
    /// <summary>Not in Debian 12 headers (Linux 6.7+): the kernel resolves WP faults itself, no messages.</summary>
    public const ulong UFFD_FEATURE_WP_ASYNC = 1UL << 15;
    /// <summary>Not in Debian 12 headers (Linux 6.8+): UFFDIO_MOVE.</summary>
    public const ulong UFFD_FEATURE_MOVE = 1UL << 16;

    public const ulong UFFDIO_REGISTER_MODE_MISSING = 1;
    public const ulong UFFDIO_REGISTER_MODE_WP = 2;
    public const ulong UFFDIO_REGISTER_MODE_MINOR = 4;

    public const ulong UFFDIO_WRITEPROTECT_MODE_WP = 1;
    public const ulong UFFDIO_WRITEPROTECT_MODE_DONTWAKE = 2;
    public const ulong UFFDIO_COPY_MODE_DONTWAKE = 1;
    public const ulong UFFDIO_COPY_MODE_WP = 2;
    public const ulong UFFDIO_ZEROPAGE_MODE_DONTWAKE = 1;

    public const byte UFFD_EVENT_PAGEFAULT = 0x12;
    public const ulong UFFD_PAGEFAULT_FLAG_WRITE = 1;
    public const ulong UFFD_PAGEFAULT_FLAG_WP = 2;
    public const ulong UFFD_PAGEFAULT_FLAG_MINOR = 4;

    /// <summary>_UFFDIO_* bit positions in uffdio_api.ioctls / uffdio_register.ioctls.</summary>
    public const int _UFFDIO_WRITEPROTECT = 0x06;
    public const int _UFFDIO_COPY = 0x03;
}
