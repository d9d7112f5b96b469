namespace MiniVmm.Snapshot;

/// <summary>What a finished (or failed) snapshot reports: the summary line and the benchmark numbers.</summary>
public sealed record SnapshotResult
{
    public required string Engine { get; init; }
    public bool Succeeded { get; init; }
    public string? Error { get; init; }
    public bool Cancelled { get; init; }
    public long PagesSaved { get; init; }
    public long ZeroPages { get; init; }
    /// <summary>Of <see cref="ZeroPages"/>, those recorded from the page tables without being read (never-written RAM).</summary>
    public long ZeroPagesUnread { get; init; }
    public long BytesWritten { get; init; }
    public long FaultsServed { get; init; }
    public TimeSpan Downtime { get; init; }
    /// <summary>From the start of the snapshot to the last byte handed to the destination (before fsync).</summary>
    public TimeSpan WriteTime { get; init; }
    /// <summary>From the start to the completed, synced and renamed image.</summary>
    public TimeSpan TotalTime { get; init; }
    public TimeSpan FsyncTime { get; init; }

    /// <summary>
    /// The window in which the snapshot can disturb the guest: from the freeze until the last page is saved and
    /// un-protected (write tracking), or until the copy ends and the guest runs free again (stop-copy, dirty-log).
    /// The fsync that follows is not part of it (see <see cref="FsyncTime"/>). Benchmarks measure guest throughput over
    /// this window, the same definition as QEMU's `migrate` to `completed`.
    /// </summary>
    public TimeSpan ProtectedWindow { get; init; }

    /// <summary>
    /// When the protected window began (the freeze), on CLOCK_MONOTONIC in ns (0 when the snapshot never froze), so
    /// a benchmark can place the window on the guest's own timeline instead of inferring it from when a line arrived.
    /// </summary>
    public long FreezeMonotonicNs { get; init; }

    /// <summary>A <see cref="System.Diagnostics.Stopwatch"/> timestamp as CLOCK_MONOTONIC ns (Stopwatch's clock on Linux).</summary>
    public static long MonotonicNs(long stopwatchTimestamp) =>
        stopwatchTimestamp == 0 ? 0 : (long)(stopwatchTimestamp * (1e9 / System.Diagnostics.Stopwatch.Frequency));
    public TimeSpan FaultStallP50 { get; init; }
    public TimeSpan FaultStallP99 { get; init; }
    public TimeSpan FaultStallMax { get; init; }
    /// <summary>Host-side stall of each write fault (message read to un-protect), microseconds; sampled past 256k faults.</summary>
    public double[] FaultStallSamplesUs { get; init; } = [];

    /// <summary>Write faults were served from a real-time thread (asked for with <see cref="SnapshotOptions.RealtimeFaultThread"/>, and granted).</summary>
    public bool RealtimeFaultThread { get; init; }

    /// <summary>Where the slowest 1 % of write faults spent their stall, on average (null: no fault).</summary>
    public FaultPhases? SlowFaultPhases { get; init; }

    /// <summary>Write faults that found every fault buffer queued for the destination and waited for one (write tracking).</summary>
    public long FaultBufferWaits { get; init; }
    /// <summary>The time those faults waited for a buffer, summed (part of their stalls).</summary>
    public TimeSpan FaultBufferWaitTime { get; init; }

    /// <summary>Where the downtime went (pause, state capture, write protection), for tuning.</summary>
    public string? DowntimeBreakdown { get; init; }
    /// <summary>The id the snapshot was written with, and its trailer checksum: what a child link names it by.</summary>
    public Guid SnapshotId { get; init; }
    public ulong TrailerChecksum { get; init; }

    /// <summary>An incremental link: only <see cref="ChangedPages"/> pages (written since the parent) were saved.</summary>
    public bool Incremental { get; init; }
    public long ChangedPages { get; init; }

    /// <summary>The second pause of a tracked snapshot, which hands guest RAM back to the change tracker (zero: none).</summary>
    public TimeSpan HandoverPause { get; init; }

    /// <summary>Bytes written for the VM's writable drives (their content at the freeze, zero blocks skipped), set by the VMM.</summary>
    public long DriveBytes { get; init; }
    /// <summary>Drive blocks a guest write had to copy before it could overwrite them (the rest were copied in the background).</summary>
    public long DriveBlocksCopiedBeforeWrite { get; init; }
    /// <summary>An incremental link's drive pages (4 KiB, written since the parent) it stored; null for full drive captures.</summary>
    public long? DriveLinkPages { get; init; }

    public int Iterations { get; init; }
    public bool Converged { get; init; } = true;

    /// <summary>
    /// The one outcome line a user reads: what was saved and what it cost the guest, in MiB and ms only. Every other
    /// figure is in <see cref="Details"/> (the debug log) and in the machine-readable statistics.
    /// </summary>
    public string Summary() => Succeeded
        ? $"snapshot ({Engine}): {PagesSaved} pages saved ({MiB(BytesWritten)}), downtime {ShortMs(Downtime)}, " +
          $"protected window {ShortMs(ProtectedWindow)}, total {ShortMs(TotalTime)}" +
          (Incremental ? $", incremental: {ChangedPages} changed pages" : "") +
          (Iterations > 0 && !Converged ? $", did not converge in {Iterations} iterations" : "") +
          (DriveBytes > 0 || DriveLinkPages is not null ? $", drives {MiB(DriveBytes)}" : "") +
          (DriveLinkPages is { } pages ? $" ({pages} changed pages)" : "")
        : $"snapshot ({Engine}) {(Cancelled ? "cancelled" : "failed")}: {Error}";

    /// <summary>Every figure of a finished snapshot on one line, for the debug log and for tuning.</summary>
    public string Details() => Succeeded
        ? $"snapshot ({Engine}) details: {PagesSaved} pages saved, {BytesWritten} bytes, {ZeroPages} zero pages skipped ({ZeroPagesUnread} not read), " +
          $"{FaultsServed} faults served, downtime {Ms(Downtime)}{(DowntimeBreakdown is null ? "" : $" ({DowntimeBreakdown})")}, total {Ms(TotalTime)} (write {Ms(WriteTime)}, fsync {Ms(FsyncTime)}), " +
          $"fault stall p50 {Us(FaultStallP50)} p99 {Us(FaultStallP99)} max {Us(FaultStallMax)}" +
          (FaultBufferWaits > 0 ? $" ({FaultBufferWaits} waited {Ms(FaultBufferWaitTime)} for a fault buffer)" : "") +
          (SlowFaultPhases is { } slow
              ? $", slowest 1 % of faults: copy {Us(slow.Copy)}, claim wait {Us(slow.ClaimWait)}, un-protect {Us(slow.Unprotect)}" : "") +
          (Iterations > 0 ? $", {Iterations} iterations{(Converged ? "" : " (did not converge)")}" : "") +
          $", protected window {Ms(ProtectedWindow)}" +
          (Incremental ? $", incremental: {ChangedPages} pages changed since the parent" : "") +
          (HandoverPause > TimeSpan.Zero ? $", tracking handover {Ms(HandoverPause)}" : "") +
          (DriveBytes > 0 || DriveBlocksCopiedBeforeWrite > 0 || DriveLinkPages is not null
              ? $", drives {DriveBytes} bytes ({DriveBlocksCopiedBeforeWrite} blocks copied before a write{(DriveLinkPages is { } p ? $", a link of {p} changed pages" : "")})" : "")
        : Summary();

    private static string Ms(TimeSpan t) => $"{t.TotalMilliseconds:F2} ms";
    /// <summary>Milliseconds with the digits that mean something: 0.53 ms, 23.4 ms, 231 ms.</summary>
    private static string ShortMs(TimeSpan t) => t.TotalMilliseconds switch
    {
        < 10 => $"{t.TotalMilliseconds:F2} ms",
        < 100 => $"{t.TotalMilliseconds:F1} ms",
        _ => $"{t.TotalMilliseconds:F0} ms",
    };
    private static string MiB(long bytes) => $"{bytes / (double)(1 << 20):F1} MiB";
    private static string Us(TimeSpan t) => $"{t.TotalMicroseconds:F0} us";
}
