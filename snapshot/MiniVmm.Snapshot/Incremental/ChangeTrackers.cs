using MiniVmm.Core.Memory;

namespace MiniVmm.Snapshot.Incremental;

/// <summary>Picks how a VM's writes between snapshots are tracked on this host.</summary>
public static class ChangeTrackers
{
    /// <summary>
    /// userfaultfd WP_ASYNC + PAGEMAP_SCAN where the kernel has them (created idle: it starts with its first Resume);
    /// else KVM's dirty log, which tracks from now on. <paramref name="fallbackReason"/> says why the first was not
    /// used. The caller owns the tracker (both are <see cref="IDisposable"/>).
    /// </summary>
    /// <exception cref="ChangeTrackingException">Neither works here (the message says why).</exception>
    public static IChangeTracker Create(GuestMemory memory, ISnapshotSource source, out string? fallbackReason)
    {
        fallbackReason = null;
        try { return WrittenPageTracker.Create(memory, startTracking: false); }
        catch (ChangeTrackingException e) when (!memory.IsFileBacked)
        {
            fallbackReason = e.Message;
        }
        try { return new KvmDirtyLogTracker(source); }
        catch (Exception e) when (e is KvmSharp.LinuxException or NotSupportedException or InvalidOperationException)
        {
            throw new ChangeTrackingException($"changes cannot be tracked here: {fallbackReason}; KVM's dirty log failed too: {e.Message}", e);
        }
    }
}
