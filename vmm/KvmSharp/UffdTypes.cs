using System.Runtime.InteropServices;

namespace KvmSharp;

/// <summary>userfaultfd API features (UFFD_FEATURE_*), negotiated by <see cref="UserfaultFd.Create(UffdFeatures, UffdFeatures, Func{UffdFeatures, string}?)"/>.</summary>
[Flags]
public enum UffdFeatures : ulong
{
    None = 0,
    /// <summary>Write-protect faults are reported (and tell themselves apart from missing-page faults).</summary>
    PagefaultFlagWp = 1UL << 0,
    EventFork = 1UL << 1,
    EventRemap = 1UL << 2,
    EventRemove = 1UL << 3,
    MissingHugetlbfs = 1UL << 4,
    MissingShmem = 1UL << 5,
    EventUnmap = 1UL << 6,
    Sigbus = 1UL << 7,
    /// <summary>A fault message carries the faulting thread's id.</summary>
    ThreadId = 1UL << 8,
    MinorHugetlbfs = 1UL << 9,
    MinorShmem = 1UL << 10,
    ExactAddress = 1UL << 11,
    WpHugetlbfsShmem = 1UL << 12,
    /// <summary>Linux 6.4+: write protection also covers never-populated pages.</summary>
    WpUnpopulated = 1UL << 13,
    Poison = 1UL << 14,
    /// <summary>Linux 6.7+: the kernel resolves write-protect faults itself and records them for PAGEMAP_SCAN.</summary>
    WpAsync = 1UL << 15,
    /// <summary>Linux 6.8+: UFFDIO_MOVE.</summary>
    Move = 1UL << 16,
}

/// <summary>What a registered range reports (UFFDIO_REGISTER_MODE_*).</summary>
[Flags]
public enum UffdRegisterMode : ulong
{
    Missing = 1,
    WriteProtect = 2,
    Minor = 4,
}

/// <summary>The range operations the kernel supports on a registered range (the _UFFDIO_* bits it returns).</summary>
[Flags]
public enum UffdRangeOperations : ulong
{
    None = 0,
    Wake = 1UL << 0x02,
    Copy = 1UL << 0x03,
    ZeroPage = 1UL << 0x04,
    Move = 1UL << 0x05,
    WriteProtect = 1UL << 0x06,
    Continue = 1UL << 0x07,
    Poison = 1UL << 0x08,
}

/// <summary>
/// One message read from a userfaultfd: struct uffd_msg (32 bytes), kernel layout, so a span of them is read into
/// directly. Only the page-fault member of the union is decoded; other events report <see cref="IsPageFault"/> false.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 32)]
public readonly struct UffdMessage
{
    internal const byte PageFaultEvent = 0x12;
    private const ulong FlagWrite = 1, FlagWp = 2;

    private readonly byte _event;
    private readonly byte _reserved1;
    private readonly ushort _reserved2;
    private readonly uint _reserved3;
    private readonly ulong _flags;
    private readonly ulong _address;
    private readonly uint _threadId;

    internal UffdMessage(byte @event, ulong flags, ulong address, uint threadId)
    {
        _event = @event;
        _flags = flags;
        _address = address;
        _threadId = threadId;
    }

    public bool IsPageFault => _event == PageFaultEvent;

    /// <summary>The faulting host address (turned into a guest page by the memory layer that owns the mapping).</summary>
    public ulong HostAddress => _address;

    public bool IsWrite => (_flags & FlagWrite) != 0;

    /// <summary>A write to a write-protected page (rather than a missing page).</summary>
    public bool IsWriteProtectFault => (_flags & FlagWp) != 0;

    /// <summary>The faulting thread (with <see cref="UffdFeatures.ThreadId"/>).</summary>
    public uint ThreadId => _threadId;
}

/// <summary>
/// The outcome of a userfaultfd install (copy, zero page, move): the bytes done, or the errno that stopped it. A partial
/// install reports its progress with <see cref="Errno.EAGAIN"/>; the caller continues after <see cref="Bytes"/>.
/// </summary>
public readonly record struct UffdResult(long Bytes, Errno Error)
{
    public bool Succeeded => Error == Errno.None;

    internal static UffdResult From(int rc, long progress) =>
        rc == 0 ? new UffdResult(progress, Errno.None)
        : new UffdResult(Math.Max(progress, 0), LastErrno.Get());
}
