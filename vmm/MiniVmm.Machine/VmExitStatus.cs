namespace MiniVmm.Machine;

public enum VmStopReason
{
    /// <summary>The guest wrote its status to the debug-exit port.</summary>
    GuestExit,
    /// <summary>Triple fault (KVM_EXIT_SHUTDOWN) or a system-event shutdown without a status.</summary>
    TripleFault,
    /// <summary>KVM could not emulate or enter the guest (internal error, failed entry).</summary>
    EmulationFailure,
    /// <summary>The guest asked for a reset (i8042 0xFE, system-event reset). MiniVmm stops rather than reboots.</summary>
    Reset,
    /// <summary>SIGINT/SIGTERM (GuestStatus = the signal number), the monitor's quit or an API stop (GuestStatus 0).</summary>
    HostRequest,
    /// <summary>A VMM failure (a bug or a kernel call that failed).</summary>
    InternalError,
    /// <summary>--exit-after-snapshot: the snapshot ended (GuestStatus 0 = it succeeded).</summary>
    AfterSnapshot,
    /// <summary>A lazily restored page failed its checksum (or could not be read): the snapshot file is bad.</summary>
    CorruptSnapshot,
    /// <summary>The user quit from the console (Ctrl-A x): exit 0, as QEMU's -nographic escape does.</summary>
    ConsoleQuit,
    /// <summary>A lazily restored page could not be fetched: the object store did not answer.</summary>
    StoreUnreachable,
}

/// <summary>Why the VM stopped and the process exit code that reports it.</summary>
public sealed record VmExitStatus(VmStopReason Reason, uint GuestStatus = 0, string? Detail = null)
{
    // Distinct codes for VMM-level outcomes, above what test guests use for their own statuses.
    public const int ExitTripleFault = 122;
    public const int ExitEmulationFailure = 123;
    public const int ExitReset = 124;
    public const int ExitInternalError = 125;
    public const int ExitHostRequest = 130;
    public const int ExitSnapshotFailed = 126;
    /// <summary>Same code as any other bad input file.</summary>
    public const int ExitCorruptSnapshot = 120;
    /// <summary>An s3:// snapshot's store could not be reached (the object itself may be fine).</summary>
    public const int ExitStoreUnreachable = 128;

    /// <summary>The guest's debug-exit value itself (0 = success), truncated to 8 bits by the OS.</summary>
    public int ProcessExitCode => Reason switch
    {
        VmStopReason.GuestExit => (int)(GuestStatus & 0xFF),
        VmStopReason.TripleFault => ExitTripleFault,
        VmStopReason.EmulationFailure => ExitEmulationFailure,
        VmStopReason.Reset => ExitReset,
        // 128 + the signal, as a shell reports a process a signal ended (SIGINT 130, SIGTERM 143).
        VmStopReason.HostRequest => GuestStatus is > 0 and < 64 ? 128 + (int)GuestStatus : ExitHostRequest,
        VmStopReason.AfterSnapshot => GuestStatus == 0 ? 0 : ExitSnapshotFailed,
        VmStopReason.CorruptSnapshot => ExitCorruptSnapshot,
        VmStopReason.ConsoleQuit => 0,
        VmStopReason.StoreUnreachable => ExitStoreUnreachable,
        _ => ExitInternalError,
    };

    /// <summary>True for the stops a user asks for or expects (the guest's own exit, a signal, quit): not problems.</summary>
    public bool IsNormal => Reason is VmStopReason.GuestExit or VmStopReason.AfterSnapshot or VmStopReason.HostRequest or VmStopReason.ConsoleQuit;

    /// <summary>What happened, in a user's words (no enum names): "the guest exited with status 0", "stopped by SIGINT".</summary>
    public string Describe() => Reason switch
    {
        VmStopReason.GuestExit => $"the guest exited with status {GuestStatus}",
        VmStopReason.HostRequest => Detail ?? (GuestStatus == 0 ? "stopped on request" : $"stopped by signal {GuestStatus}"),
        VmStopReason.AfterSnapshot => GuestStatus == 0 ? "stopped after the snapshot" : $"stopped after a failed snapshot{(Detail is null ? "" : ": " + Detail)}",
        VmStopReason.TripleFault => "the guest stopped with a triple fault" + (Detail is null ? "" : ": " + Detail),
        VmStopReason.EmulationFailure => "KVM could not run the guest" + (Detail is null ? "" : ": " + Detail),
        VmStopReason.Reset => "the guest asked for a reset" + (Detail is null ? "" : ": " + Detail),
        VmStopReason.CorruptSnapshot => "the snapshot is damaged" + (Detail is null ? "" : ": " + Detail),
        VmStopReason.ConsoleQuit => "quit from the console (Ctrl-A x)",
        VmStopReason.StoreUnreachable => "the object store stopped answering" + (Detail is null ? "" : ": " + Detail),
        _ => "internal error" + (Detail is null ? "" : ": " + Detail),
    };

    public override string ToString() => Reason == VmStopReason.GuestExit
        ? $"guest exited with status {GuestStatus}"
        : $"{Reason}{(Detail is null ? "" : ": " + Detail)}";
}
