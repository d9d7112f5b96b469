namespace MiniVmm.Core.Memory;

/// <summary>
/// Where guest RAM's content comes from while the VM runs, when it is not simply resident: a lazy restore installs each
/// page on first touch. The VM is handed its backend and owns it: it says when the guest starts and when a failure needs
/// blocked faults released, and disposes it after the vCPUs have stopped and before RAM is unmapped.
/// </summary>
public interface IGuestMemoryBackend : IDisposable
{
    /// <summary>The vCPUs run: background work (prefetching) may begin.</summary>
    void GuestStarted();

    /// <summary>After a failure, with every vCPU kicked: wakes threads blocked on pages that will never be served.</summary>
    void ReleaseFaultsAfterFailure();

    /// <summary>
    /// Installs every page still missing and detaches, so that RAM is plain anonymous memory again (a live snapshot
    /// registers it with its own userfaultfd). Throws when a page cannot be installed. Later calls do nothing.
    /// </summary>
    void MakeResident();
}
