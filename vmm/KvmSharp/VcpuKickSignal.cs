using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// The real-time signal used to kick vCPU threads out of KVM_RUN. It sits above the .NET runtime's own (CoreCLR uses
/// SIGRTMIN for thread activation) and has a native handler that is one <c>ret</c> instruction: the handler must be
/// async-signal-safe and must not enter managed code; its only purpose is to make the blocking ioctl return EINTR.
/// </summary>
public static unsafe class VcpuKickSignal
{
    public const int Signal = 40;
    private const int SA_ONSTACK = 0x08000000;
    private static readonly object Gate = new();
    private static nint _stub;

    /// <summary>Installs the no-op handler once per process. Idempotent and thread-safe.</summary>
    public static void Install()
    {
        lock (Gate)
        {
            if (_stub != 0) return;
            nint page = Libc.mmap(0, 4096, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
            LinuxException.CheckPtr(page, "mmap(signal stub)");
            *(byte*)page = 0xC3; // ret
            LinuxException.Check(Libc.mprotect(page, 4096, Libc.PROT_READ | Libc.PROT_EXEC), "mprotect(signal stub)");
            var act = new sigaction_t { sa_handler = page, sa_flags = SA_ONSTACK };
            // glibc's sigaction() supplies SA_RESTORER and its own restorer; no SA_RESTART: KVM_RUN must return EINTR.
            LinuxException.Check(Libc.sigaction(Signal, &act, null), "sigaction(kick signal)");
            _stub = page;
        }
    }

    internal static void Send(int tid)
    {
        // Best effort: the thread may have just exited; a lost kick is covered by immediate_exit.
        Libc.syscall(Libc.SYS_tgkill, Libc.getpid(), tid, Signal);
    }
}
