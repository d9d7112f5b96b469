using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// Owns a vCPU file descriptor and its mmap'ed kvm_run page. <see cref="Run"/> is called only from the vCPU's own
/// thread; <see cref="Kick"/> may be called from any thread to make a running KVM_RUN return promptly.
/// </summary>
public sealed unsafe partial class Vcpu : IDisposable
{
    private readonly FileDescriptor _fd;
    private readonly MemoryMapping _run;
    private volatile int _threadId; // the native tid of the thread that calls Run, for tgkill

    internal Vcpu(int index, FileDescriptor fd, MemoryMapping run)
    {
        Index = index;
        _fd = fd;
        _run = run;
    }

    public int Index { get; }

    private kvm_run* RunPage => (kvm_run*)_run.DangerousGetAddress();

    /// <summary>Records the calling thread as this vCPU's thread (the one kicks are sent to).</summary>
    public void BindToCurrentThread() => _threadId = (int)Libc.syscall(Libc.SYS_gettid, 0, 0, 0);

    /// <summary>
    /// Runs the guest until the next exit. EINTR/EAGAIN (a kick) come back as <see cref="VcpuExitKind.Interrupted"/>;
    /// immediate_exit is cleared afterwards so the next Run enters the guest again.
    /// </summary>
    public VcpuExit Run()
    {
        // The kernel writes kvm_run during the call: hold the mapping so a concurrent Dispose cannot unmap it under KVM_RUN.
        bool held = false;
        int rc;
        try
        {
            _run.DangerousAddRef(ref held);
            rc = Libc.ioctl_int(_fd, Kvm.KVM_RUN, 0);
        }
        finally
        {
            if (held) _run.DangerousRelease();
        }
        kvm_run* run = RunPage;
        if (rc < 0)
        {
            Errno errno = LastErrno.Get();
            if (errno == Errno.EINTR || errno == Errno.EAGAIN)
            {
                run->immediate_exit = 0;
                return new VcpuExit(VcpuExitKind.Interrupted, Kvm.KVM_EXIT_INTR);
            }
            throw new KvmException("KVM_RUN", errno);
        }

        uint reason = run->exit_reason;
        byte* exitUnion = (byte*)run + KvmRunLayout.ExitUnionOffset;
        switch (reason)
        {
            case Kvm.KVM_EXIT_IO:
            {
                var io = (kvm_run_io*)exitUnion;
                int total = io->size * (int)io->count;
                // SAFETY: data_offset and size*count come from the kernel and lie inside the kvm_run mapping; the
                // mapping's bounds check rejects anything else.
                var data = _run.GetSpan(io->data_offset, total);
                return new VcpuExit(io->direction == Kvm.KVM_EXIT_IO_OUT ? VcpuExitKind.IoOut : VcpuExitKind.IoIn,
                    reason, io->port, data, (int)io->count);
            }
            case Kvm.KVM_EXIT_MMIO:
            {
                var mmio = (kvm_run_mmio*)exitUnion;
                int len = (int)Math.Min(mmio->len, 8u);
                var data = new Span<byte>(mmio->data, len);
                return new VcpuExit(mmio->is_write != 0 ? VcpuExitKind.MmioWrite : VcpuExitKind.MmioRead, reason, mmio->phys_addr, data);
            }
            case Kvm.KVM_EXIT_HLT: return new VcpuExit(VcpuExitKind.Hlt, reason);
            case Kvm.KVM_EXIT_SHUTDOWN: return new VcpuExit(VcpuExitKind.Shutdown, reason);
            case Kvm.KVM_EXIT_INTR: return new VcpuExit(VcpuExitKind.Interrupted, reason);
            case Kvm.KVM_EXIT_INTERNAL_ERROR:
            {
                var ie = (kvm_run_internal*)exitUnion;
                int n = (int)Math.Min(ie->ndata, 16u);
                return new VcpuExit(VcpuExitKind.InternalError, reason, internalSuberror: ie->suberror,
                    internalData: new ReadOnlySpan<ulong>(ie->data, n));
            }
            case Kvm.KVM_EXIT_FAIL_ENTRY:
            {
                ulong hwReason = *(ulong*)exitUnion;
                return new VcpuExit(VcpuExitKind.FailEntry, reason, hwReason);
            }
            case Kvm.KVM_EXIT_SYSTEM_EVENT:
            {
                uint type = *(uint*)exitUnion;
                return new VcpuExit(VcpuExitKind.SystemEvent, reason, type);
            }
            default: return new VcpuExit(VcpuExitKind.Other, reason);
        }
    }

    /// <summary>
    /// Makes KVM_RUN return: immediate_exit covers a vCPU about to enter the guest, the signal one already inside it.
    /// Setting immediate_exit before the signal closes the race where the signal lands just before KVM_RUN starts.
    /// </summary>
    public void Kick()
    {
        bool held = false;
        try
        {
            // A kick racing Dispose is harmless: a vCPU that is gone needs no kick, and its page is not written.
            try { _run.DangerousAddRef(ref held); }
            catch (ObjectDisposedException) { return; }
            RunPage->immediate_exit = 1;
            Thread.MemoryBarrier();
            int tid = _threadId;
            if (tid != 0) VcpuKickSignal.Send(tid);
        }
        finally
        {
            if (held) _run.DangerousRelease();
        }
    }

    public kvm_regs GetRegs() { kvm_regs r; Check(Libc.ioctl(_fd, Kvm.KVM_GET_REGS, &r), "KVM_GET_REGS"); return r; }
    public void SetRegs(in kvm_regs regs) { fixed (kvm_regs* p = &regs) Check(Libc.ioctl(_fd, Kvm.KVM_SET_REGS, p), "KVM_SET_REGS"); }
    public kvm_sregs GetSregs() { kvm_sregs s; Check(Libc.ioctl(_fd, Kvm.KVM_GET_SREGS, &s), "KVM_GET_SREGS"); return s; }
    public void SetSregs(in kvm_sregs sregs) { fixed (kvm_sregs* p = &sregs) Check(Libc.ioctl(_fd, Kvm.KVM_SET_SREGS, p), "KVM_SET_SREGS"); }
    public kvm_fpu GetFpu() { kvm_fpu f; Check(Libc.ioctl(_fd, Kvm.KVM_GET_FPU, &f), "KVM_GET_FPU"); return f; }
    public void SetFpu(in kvm_fpu fpu) { fixed (kvm_fpu* p = &fpu) Check(Libc.ioctl(_fd, Kvm.KVM_SET_FPU, p), "KVM_SET_FPU"); }
    public kvm_lapic_state GetLapic() { kvm_lapic_state l; Check(Libc.ioctl(_fd, Kvm.KVM_GET_LAPIC, &l), "KVM_GET_LAPIC"); return l; }
    public void SetLapic(in kvm_lapic_state lapic) { fixed (kvm_lapic_state* p = &lapic) Check(Libc.ioctl(_fd, Kvm.KVM_SET_LAPIC, p), "KVM_SET_LAPIC"); }
    public kvm_xcrs GetXcrs() { kvm_xcrs x; Check(Libc.ioctl(_fd, Kvm.KVM_GET_XCRS, &x), "KVM_GET_XCRS"); return x; }
    public void SetXcrs(in kvm_xcrs xcrs) { fixed (kvm_xcrs* p = &xcrs) Check(Libc.ioctl(_fd, Kvm.KVM_SET_XCRS, p), "KVM_SET_XCRS"); }
    public kvm_vcpu_events GetEvents() { kvm_vcpu_events e; Check(Libc.ioctl(_fd, Kvm.KVM_GET_VCPU_EVENTS, &e), "KVM_GET_VCPU_EVENTS"); return e; }
    public void SetEvents(in kvm_vcpu_events ev) { fixed (kvm_vcpu_events* p = &ev) Check(Libc.ioctl(_fd, Kvm.KVM_SET_VCPU_EVENTS, p), "KVM_SET_VCPU_EVENTS"); }
    public kvm_debugregs GetDebugRegs() { kvm_debugregs d; Check(Libc.ioctl(_fd, Kvm.KVM_GET_DEBUGREGS, &d), "KVM_GET_DEBUGREGS"); return d; }
    public void SetDebugRegs(in kvm_debugregs d) { fixed (kvm_debugregs* p = &d) Check(Libc.ioctl(_fd, Kvm.KVM_SET_DEBUGREGS, p), "KVM_SET_DEBUGREGS"); }

    public VcpuMpState GetMpState() { kvm_mp_state m; Check(Libc.ioctl(_fd, Kvm.KVM_GET_MP_STATE, &m), "KVM_GET_MP_STATE"); return (VcpuMpState)m.mp_state; }
    public void SetMpState(VcpuMpState state) { var m = new kvm_mp_state { mp_state = (uint)state }; Check(Libc.ioctl(_fd, Kvm.KVM_SET_MP_STATE, &m), "KVM_SET_MP_STATE"); }

    /// <summary>XSAVE area of <paramref name="size"/> bytes: KVM_GET_XSAVE2 when the kernel reports a size above 4 KiB.</summary>
    public byte[] GetXsave(int size)
    {
        size = Math.Max(size, sizeof(kvm_xsave));
        var buf = new byte[size];
        fixed (byte* p = buf)
            Check(Libc.ioctl(_fd, size > sizeof(kvm_xsave) ? Kvm.KVM_GET_XSAVE2 : Kvm.KVM_GET_XSAVE, p), "KVM_GET_XSAVE");
        return buf;
    }

    public void SetXsave(ReadOnlySpan<byte> area)
    {
        if (area.Length < sizeof(kvm_xsave)) throw new ArgumentException($"XSAVE area is {area.Length} bytes; at least {sizeof(kvm_xsave)} needed");
        fixed (byte* p = area) Check(Libc.ioctl(_fd, Kvm.KVM_SET_XSAVE, p), "KVM_SET_XSAVE");
    }

    /// <summary>Reads the given MSRs; KVM returns how many it read, which may be fewer than asked.</summary>
    public kvm_msr_entry[] GetMsrs(ReadOnlySpan<uint> indices)
    {
        using var msrs = new KernelArray<kvm_msr_entry>(sizeof(kvm_msrs), indices.Length);
        var entries = msrs.Entries;
        for (int i = 0; i < indices.Length; i++) entries[i].index = indices[i];
        int read = Check(Libc.ioctl(_fd, Kvm.KVM_GET_MSRS, msrs.Pointer), "KVM_GET_MSRS");
        return msrs.ToArray(read);
    }

    public void SetMsrs(ReadOnlySpan<kvm_msr_entry> msrs)
    {
        int written = SetMsrsPartial(msrs);
        if (written != msrs.Length)
            throw new KvmException("KVM_SET_MSRS", Errno.EINVAL, $"KVM accepted {written} of {msrs.Length} MSRs; MSR 0x{msrs[written].index:x} was refused");
    }

    /// <summary>KVM_SET_MSRS: KVM stops at the first MSR it refuses; returns how many it set.</summary>
    public int SetMsrsPartial(ReadOnlySpan<kvm_msr_entry> msrs)
    {
        using var array = KernelArray<kvm_msr_entry>.Of(sizeof(kvm_msrs), msrs);
        return Check(Libc.ioctl(_fd, Kvm.KVM_SET_MSRS, array.Pointer), "KVM_SET_MSRS");
    }

    public void SetCpuid(ReadOnlySpan<kvm_cpuid_entry2> entries)
    {
        using var cpuid = KernelArray<kvm_cpuid_entry2>.Of(sizeof(kvm_cpuid2), entries);
        Check(Libc.ioctl(_fd, Kvm.KVM_SET_CPUID2, cpuid.Pointer), "KVM_SET_CPUID2");
    }

    /// <summary>KVM_GET_TSC_KHZ: the guest TSC rate, which paced guests need (CPUID 0x15/0x16 may read 0).</summary>
    public int GetTscKhz() => Check(Libc.ioctl_int(_fd, Kvm.KVM_GET_TSC_KHZ, 0), "KVM_GET_TSC_KHZ");

    /// <summary>KVM_KVMCLOCK_CTRL: tells a kvmclock guest it was paused (soft-lockup detectors then stay quiet).</summary>
    public bool TryNotifyClockPaused() => Libc.ioctl_int(_fd, Kvm.KVM_KVMCLOCK_CTRL, 0) == 0;

    private static int Check(int rc, string name) => KvmException.Check(rc, name);

    public void Dispose()
    {
        _run.Dispose();
        _fd.Dispose();
    }
}
