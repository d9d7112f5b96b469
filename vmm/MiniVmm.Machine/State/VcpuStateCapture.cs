using KvmSharp;
using KvmSharp.Interop;
using MiniVmm.Snapshot.Format;
using Microsoft.Extensions.Logging;

namespace MiniVmm.Machine.State;

/// <summary>
/// Saves and restores everything KVM keeps for a vCPU — regs, sregs, XSAVE (or FPU), XCRs, MSRs incl. KVM's own,
/// LAPIC, pending events, MP state, debug registers — as one section per kernel struct ("vcpu0.regs", ...).
/// Capture runs on the vCPU's thread while it is paused.
/// </summary>
internal sealed class VcpuStateCapture
{
    private readonly int _xsaveSize;
    private readonly bool _hasXsave, _hasXcrs, _hasEvents, _hasDebugRegs;
    private readonly uint[] _msrCandidates;
    private uint[]? _msrs;
    private readonly ILogger _log;
    private const uint MsrTscDeadline = 0x6e0;

    public VcpuStateCapture(KvmSystem kvm, ILogger log)
    {
        _log = log;
        _hasXsave = kvm.CheckExtension(Kvm.KVM_CAP_XSAVE) > 0;
        _xsaveSize = Math.Max(4096, kvm.CheckExtension(Kvm.KVM_CAP_XSAVE2));
        _hasXcrs = kvm.CheckExtension(Kvm.KVM_CAP_XCRS) > 0;
        _hasEvents = kvm.CheckExtension(Kvm.KVM_CAP_VCPU_EVENTS) > 0;
        _hasDebugRegs = kvm.CheckExtension(Kvm.KVM_CAP_DEBUGREGS) > 0;
        _msrCandidates = kvm.GetMsrIndexList();
    }

    public void Capture(Vcpu vcpu, List<StateSection> into)
    {
        string p = $"vcpu{vcpu.Index}.";
        into.Add(new StateSection(p + "mp_state", 1, BitConverter.GetBytes(vcpu.GetMpState())));
        into.Add(new StateSection(p + "regs", 1, AbiBytes.Of(vcpu.GetRegs())));
        into.Add(new StateSection(p + "sregs", 1, AbiBytes.Of(vcpu.GetSregs())));
        if (_hasXsave) into.Add(new StateSection(p + "xsave", 1, vcpu.GetXsave(_xsaveSize)));
        else into.Add(new StateSection(p + "fpu", 1, AbiBytes.Of(vcpu.GetFpu())));
        if (_hasXcrs) into.Add(new StateSection(p + "xcrs", 1, AbiBytes.Of(vcpu.GetXcrs())));
        into.Add(new StateSection(p + "lapic", 1, AbiBytes.Of(vcpu.GetLapic())));
        into.Add(new StateSection(p + "msrs", 1, AbiBytes.OfArray(ReadMsrs(vcpu))));
        if (_hasEvents) into.Add(new StateSection(p + "events", 1, AbiBytes.Of(vcpu.GetEvents())));
        if (_hasDebugRegs) into.Add(new StateSection(p + "debugregs", 1, AbiBytes.Of(vcpu.GetDebugRegs())));
    }

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

    /// <summary>Applies a vCPU's sections in the order KVM needs (LAPIC before MSRs such as TSC_DEADLINE, events last).</summary>
    public void Restore(Vcpu vcpu, IReadOnlyDictionary<string, StateSection> sections, ILogger log)
    {
        string p = $"vcpu{vcpu.Index}.";
        byte[] Need(string name) => sections.TryGetValue(p + name, out var s)
            ? s.Data
            : throw new StateRestoreException($"the snapshot has no {p}{name} section");

        vcpu.SetSregs(AbiBytes.To<kvm_sregs>(Need("sregs"), p + "sregs"));
        vcpu.SetRegs(AbiBytes.To<kvm_regs>(Need("regs"), p + "regs"));
        if (sections.TryGetValue(p + "xsave", out var xsave)) vcpu.SetXsave(xsave.Data);
        else vcpu.SetFpu(AbiBytes.To<kvm_fpu>(Need("fpu"), p + "fpu"));
        if (sections.TryGetValue(p + "xcrs", out var xcrs)) vcpu.SetXcrs(AbiBytes.To<kvm_xcrs>(xcrs.Data, p + "xcrs"));
        vcpu.SetLapic(AbiBytes.To<kvm_lapic_state>(Need("lapic"), p + "lapic"));
        // IA32_TSC_DEADLINE is relative to the TSC: set it after IA32_TSC, or the deadline fires at the wrong time.
        var msrs = AbiBytes.ToArray<kvm_msr_entry>(Need("msrs"), p + "msrs").OrderBy(m => m.index == MsrTscDeadline ? 1 : 0).ToArray();
        SetMsrsTolerant(vcpu, msrs, log);
        if (sections.TryGetValue(p + "events", out var ev)) vcpu.SetEvents(AbiBytes.To<kvm_vcpu_events>(ev.Data, p + "events"));
        if (sections.TryGetValue(p + "debugregs", out var dr)) vcpu.SetDebugRegs(AbiBytes.To<kvm_debugregs>(dr.Data, p + "debugregs"));
        var mp = Need("mp_state");
        if (mp.Length != 4) throw new StateRestoreException($"{p}mp_state: {mp.Length} bytes, 4 expected");
        vcpu.SetMpState(BitConverter.ToUInt32(mp));
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
