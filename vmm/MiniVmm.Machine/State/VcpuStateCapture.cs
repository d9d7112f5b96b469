using KvmSharp;
using KvmSharp.Abi;
using Microsoft.Extensions.Logging;

namespace MiniVmm.Machine.State;

/// <summary>
/// Saves and restores everything KVM keeps for a vCPU — regs, sregs, XSAVE, XCRs, MSRs incl. KVM's own,
/// LAPIC, pending events, MP state, debug registers — as a typed <see cref="VcpuState"/> (one section per kernel
/// struct in the file, see <see cref="VmStateSections"/>). Capture runs while the vCPU is paused.
/// </summary>
internal sealed class VcpuStateCapture
{
    private readonly int _xsaveSize;
    private readonly uint[] _msrCandidates;
    private uint[]? _msrs;
    private readonly ILogger _log;
    private const uint MsrTscDeadline = 0x6e0;

    /// <remarks>The VM requires KVM_CAP_XSAVE, XCRS, VCPU_EVENTS and DEBUGREGS, so every part is always saved.</remarks>
    public VcpuStateCapture(KvmSystem kvm, ILogger log)
    {
        _log = log;
        _xsaveSize = Math.Max(4096, kvm.CheckExtension(KvmCapability.Xsave2));
        _msrCandidates = kvm.GetMsrIndexList();
    }

    /// <summary>Reads every part of the vCPU's state (on its thread, or while it is parked outside KVM_RUN).</summary>
    public VcpuState Capture(Vcpu vcpu) => new(
        vcpu.Index,
        (uint)vcpu.GetMpState(),
        vcpu.GetRegs(),
        vcpu.GetSregs(),
        vcpu.GetXsave(_xsaveSize),
        vcpu.GetXcrs(),
        vcpu.GetLapic(),
        ReadMsrs(vcpu),
        vcpu.GetEvents(),
        vcpu.GetDebugRegs());

    /// <summary>KVM_GET_MSRS stops at the first MSR it cannot read: find KVM's readable subset once, on an idle vCPU.</summary>
    public void DiscoverMsrs(Vcpu vcpu)
    {
        var good = new List<uint>();
        int i = 0;
        while (i < _msrCandidates.Length)
        {
            var read = vcpu.GetMsrs(_msrCandidates.AsSpan(i));
            good.AddRange(read.Select(e => e.index));
            i += read.Length + 1; // skip the one that failed
        }
        _msrs = good.ToArray();
        _log.LogDebug("saving {Good} of {All} MSRs KVM lists", _msrs.Length, _msrCandidates.Length);
    }

    private kvm_msr_entry[] ReadMsrs(Vcpu vcpu)
    {
        if (_msrs is null) DiscoverMsrs(vcpu);
        var entries = vcpu.GetMsrs(_msrs);
        if (entries.Length != _msrs!.Length)
            throw new InvalidOperationException($"KVM read {entries.Length} of {_msrs.Length} MSRs it read before");
        return entries;
    }

    /// <summary>
    /// Applies a decoded vCPU state in the order KVM needs (LAPIC before MSRs such as TSC_DEADLINE, MP state last). The
    /// values come from a snapshot file: KVM refusing one is a bad file, reported with the section it came from.
    /// </summary>
    /// <exception cref="StateRestoreException">A value KVM refuses, or a part this host's KVM cannot take.</exception>
    public void Restore(Vcpu vcpu, VcpuState state, ILogger log)
    {
        int i = state.Index;
        Apply(i, VmStateSections.Sregs, () => vcpu.SetSregs(state.Sregs));
        Apply(i, VmStateSections.Regs, () => vcpu.SetRegs(state.Regs));
        var xsave = FitXsave(state.Xsave, i);
        Apply(i, VmStateSections.Xsave, () => vcpu.SetXsave(xsave));
        Apply(i, VmStateSections.Xcrs, () => vcpu.SetXcrs(state.Xcrs));
        Apply(i, VmStateSections.Lapic, () => vcpu.SetLapic(state.Lapic));
        // IA32_TSC_DEADLINE is relative to the TSC: set it after IA32_TSC, or the deadline fires at the wrong time.
        var msrs = state.Msrs.OrderBy(m => m.index == MsrTscDeadline ? 1 : 0).ToArray();
        Apply(i, VmStateSections.Msrs, () => SetMsrsTolerant(vcpu, msrs, log));
        Apply(i, VmStateSections.Events, () => vcpu.SetEvents(state.Events));
        Apply(i, VmStateSections.DebugRegs, () => vcpu.SetDebugRegs(state.DebugRegs));
        Apply(i, VmStateSections.MpState, () => vcpu.SetMpState((VcpuMpState)state.MpState));
    }

    /// <summary>KVM_SET_XSAVE reads as many bytes as this host's XSAVE area has: a shorter recorded area (an older
    /// CPU's) is zero-extended, which leaves the missing components in their initial state; a longer one is refused.</summary>
    private byte[] FitXsave(byte[] xsave, int index)
    {
        if (xsave.Length == _xsaveSize) return xsave;
        // The two sizes a MiniVmm writes: the legacy 4096-byte area, or its host's KVM_CAP_XSAVE2 size. Anything else is
        // a truncated or padded section, and zero-padding it would hand KVM a made-up tail.
        if (xsave.Length != 4096)
            throw new StateRestoreException($"section '{VmStateSections.Vcpu(index, VmStateSections.Xsave)}': {xsave.Length} bytes recorded; " +
                $"an XSAVE area is 4096 bytes or this host's {_xsaveSize}");
        var fitted = new byte[_xsaveSize];
        xsave.CopyTo(fitted, 0);
        return fitted;
    }

    private static void Apply(int index, string part, Action set)
    {
        try { set(); }
        catch (KvmException e)
        {
            throw new StateRestoreException($"section '{VmStateSections.Vcpu(index, part)}': KVM refused the recorded value ({e.Message})", e);
        }
    }

    /// <summary>Sets MSRs, skipping (and logging) any this host's KVM refuses instead of failing the restore.</summary>
    private static void SetMsrsTolerant(Vcpu vcpu, kvm_msr_entry[] msrs, ILogger log)
    {
        int i = 0;
        while (i < msrs.Length)
        {
            int accepted = vcpu.SetMsrsPartial(msrs.AsSpan(i));
            if (i + accepted >= msrs.Length) return;
            log.LogDebug("KVM refused MSR 0x{Index:x} on restore; skipped", msrs[i + accepted].index);
            i += accepted + 1;
        }
    }
}
