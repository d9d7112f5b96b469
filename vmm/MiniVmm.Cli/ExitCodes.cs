namespace MiniVmm.Cli;

/// <summary>Process exit codes of the VMM itself (guest statuses are passed through unchanged, see VmExitStatus).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>Bad command line, bad configuration or bad input file (missing kernel, malformed ELF, ...).</summary>
    public const int BadInput = 120;
    /// <summary>The host lacks something MiniVmm needs (/dev/kvm, a KVM capability, userfaultfd).</summary>
    public const int HostUnsupported = 121;
    /// <summary>An s3:// snapshot's object store could not be reached (outside the guest statuses 0-119 and the signal codes 129+).</summary>
    public const int StoreUnreachable = MiniVmm.Machine.VmExitStatus.ExitStoreUnreachable;
}
