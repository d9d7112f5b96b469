namespace MiniVmm.Snapshot;

public enum SnapshotMode
{
    /// <summary>UFFD write protection: downtime of a state capture, every page saved exactly once (default).</summary>
    WriteTracking,
    /// <summary>Pause, copy everything, resume: the reference for correctness.</summary>
    StopAndCopy,
    /// <summary>KVM dirty log, iterate until the remaining set is small, then stop and copy (like classic migration).</summary>
    DirtyLog,
}

public sealed record SnapshotOptions
{
    public SnapshotMode Mode { get; init; } = SnapshotMode.WriteTracking;

    /// <summary>
    /// Cap on the bytes/s the snapshot writes to its destination (0 = unlimited), enforced by slowing the background
    /// scan (and dirty-log iterations); zero pages cost nothing. Fault service is never delayed, but its bytes count.
    /// </summary>
    public long RateLimitBytesPerSecond { get; init; }

    /// <summary>
    /// Pages saved and un-protected together around a write fault (a power of two, 1..512). Default 512 = 2 MiB, one
    /// transparent huge page: a fault round trip costs the same whatever its size, so fewer, larger blocks keep a
    /// writing guest fastest (measured: docs/DESIGN-NOTES.md, "Fault-around"; experiments/REPORT.md).
    /// </summary>
    public int FaultAroundPages { get; init; } = 512;

    /// <summary>Grow the fault-around window (doubling up to <see cref="MaxFaultAroundPages"/>) while faults are sequential.</summary>
    public bool AdaptiveFaultAround { get; init; } = true;

    public const int MaxFaultAroundPages = 512;

    /// <summary>Pages the scanner saves and un-protects per step (a power of two, 16..512).</summary>
    public int ScanChunkPages { get; init; } = 512;

    /// <summary>DirtyLog: stop iterating when fewer pages than this are dirty.</summary>
    public int DirtyLogStopPages { get; init; } = 256;

    /// <summary>DirtyLog: give up converging after this many iterations and stop-and-copy the rest.</summary>
    public int DirtyLogMaxIterations { get; init; } = 30;

    /// <summary>
    /// DirtyLog: give up converging once the running phase has taken this long (checked between iterations) and
    /// stop-and-copy the rest; the result says "did not converge". Null = only <see cref="DirtyLogMaxIterations"/> bounds it.
    /// Under a bandwidth cap and a fast writer every iteration re-sends most of RAM, so without it the engine runs for
    /// MaxIterations x (RAM / cap) — minutes — before the guest is paused anyway.
    /// </summary>
    public TimeSpan? DirtyLogConvergeTimeout { get; init; }

    /// <summary>
    /// Memory for fault copies waiting for the destination (write tracking). A guest write fault copies its block into
    /// one of these buffers and goes on; when all of them are still queued for a destination that does not keep up, the
    /// fault waits (<see cref="MaxFaultWait"/>). A larger budget lets more copies wait in memory instead; it is
    /// allocated before the freeze and touched only as faults fill it.
    /// </summary>
    public long FaultBufferBytes { get; init; } = DefaultFaultBufferBytes;

    /// <summary>
    /// Serve write faults from a real-time (SCHED_FIFO) thread (write tracking), so that a fault is served as soon as it
    /// arrives even when every CPU is busy with the scan, the destination and the guest. Needs CAP_SYS_NICE or an
    /// RLIMIT_RTPRIO; without either the thread stays a normal one and the snapshot says so.
    /// </summary>
    public bool RealtimeFaultThread { get; init; }

    /// <summary>16 MiB: 4 MiB of base-size blocks and four 2 MiB windows at the default fault-around.</summary>
    public const long DefaultFaultBufferBytes = 16L << 20;

    /// <summary>The smallest budget: four base-size blocks and one window at the largest fault-around (2 MiB each).</summary>
    public const long MinFaultBufferBytes = 10L << 20;

    /// <summary>
    /// Longest a guest write fault may wait for room to copy its pages into memory when every fault buffer is still
    /// queued for a destination that does not keep up. Past it the snapshot fails (the VM runs on, un-protected):
    /// the fault path never writes to the destination itself, so a stalled reader cannot hold a vCPU longer.
    /// </summary>
    public TimeSpan MaxFaultWait { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A destination that accepts no data for this long fails the snapshot (stream destinations: a reader that stopped
    /// reading). Infinite = wait for ever (cancel still works).
    /// </summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Write-tracking: the tracker that holds guest RAM between snapshots (null: none). The engine takes the RAM over
    /// from it at the freeze and hands it back at the end, so the next link's changed set misses no write; pages the
    /// guest writes during this snapshot belong to that next set.
    /// </summary>
    public IChangeTracker? ChangeTracker { get; init; }

    /// <summary>
    /// Save only the pages <see cref="ChangeTracker"/> reports as written since the parent (the sink's header names
    /// it); every other page is the parent's and is not read.
    /// </summary>
    public bool Incremental { get; init; }

    /// <summary>TEST ONLY: drop one changed page from an incremental link (the chain tests' negative control).</summary>
    public bool UnsafeDropOneChangedPage { get; init; }

    /// <summary>TEST ONLY: leave one changed drive block (its changed pages) out of an incremental link (the drive chain tests' negative control).</summary>
    public bool UnsafeDropOneChangedDriveBlock { get; init; }

    /// <summary>TEST ONLY: skip write protection, so the image is not point-in-time. The negative control of the tests.</summary>
    public bool UnsafeSkipWriteProtection { get; init; }

    public void Validate()
    {
        if (FaultAroundPages < 1 || FaultAroundPages > 512 || (FaultAroundPages & (FaultAroundPages - 1)) != 0)
            throw new ArgumentException($"fault-around block of {FaultAroundPages} pages is not a power of two in 1..512");
        if (ScanChunkPages < 16 || ScanChunkPages > 512 || (ScanChunkPages & (ScanChunkPages - 1)) != 0)
            throw new ArgumentException($"scan chunk of {ScanChunkPages} pages is not a power of two in 16..512");
        if (RateLimitBytesPerSecond < 0) throw new ArgumentException("rate limit must not be negative");
        if (DirtyLogConvergeTimeout < TimeSpan.Zero) throw new ArgumentException("converge timeout must not be negative");
        if (MaxFaultWait <= TimeSpan.Zero) throw new ArgumentException("the fault wait limit must be positive");
        if (FaultBufferBytes < MinFaultBufferBytes || FaultBufferBytes > 64L << 30)
            throw new ArgumentException($"a fault buffer of {FaultBufferBytes} bytes is outside {MinFaultBufferBytes >> 20} MiB..64 GiB");
        if (StallTimeout <= TimeSpan.Zero && StallTimeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentException("the snapshot stall timeout must be positive");
        if (Incremental && ChangeTracker is null) throw new ArgumentException("an incremental snapshot needs a change tracker");
    }
}
