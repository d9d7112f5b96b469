using System.Globalization;
using KvmSharp;
using KvmSharp.Abi;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.State;

/// <summary>
/// The one place that maps <see cref="VmState"/> to the snapshot's state sections and back, and the one place section
/// ids and the versions of the KVM sections are defined. Decoding treats the sections as hostile: every section must
/// be known, of a version this MiniVmm reads and of the right length; every required one must be there. A problem is
/// a <see cref="StateRestoreException"/> that names the section.
/// </summary>
/// <remarks>
/// Ids: <c>vcpuN.mp_state|regs|sregs|xsave|xcrs|lapic|msrs|events|debugregs</c>, all required (raw KVM ABI structs;
/// the XSAVE area as KVM_GET_XSAVE(2) returns it, the MSRs as an array of <c>kvm_msr_entry</c>, the MP state as a u32), <c>vm.pic0|pic1|ioapic|pit2|clock</c> (KVM structs), and
/// <c>dev.ID</c> per device (the device's own encoding and version). KVM sections are version 1; a device's version
/// is its own (<see cref="MiniVmm.Core.State.IPersistent{TSelf,TArgs}.StateVersion"/>) and checked by the device
/// manager.
/// </remarks>
internal static class VmStateSections
{
    /// <summary>Version of every KVM-struct section (vCPU and VM): the kernel ABI they carry is stable.</summary>
    public const ushort KvmVersion = 1;

    public const string Pic0 = "vm.pic0";
    public const string Pic1 = "vm.pic1";
    public const string Ioapic = "vm.ioapic";
    public const string Pit2 = "vm.pit2";
    public const string Clock = "vm.clock";

    private const string DevicePrefix = "dev.";

    public const string MpState = "mp_state", Regs = "regs", Sregs = "sregs", Xsave = "xsave", Xcrs = "xcrs",
        Lapic = "lapic", Msrs = "msrs", Events = "events", DebugRegs = "debugregs";

    private static readonly string[] VcpuParts = [MpState, Regs, Sregs, Xsave, Xcrs, Lapic, Msrs, Events, DebugRegs];

    /// <summary>KVM_SET_MSRS takes fewer than MAX_IO_MSRS (256) entries per call.</summary>
    public const int MaxMsrs = 255;

    /// <summary>Largest XSAVE area accepted (KVM's XSAVE2 size is a few KiB; 1 MiB leaves room for any future CPU).</summary>
    public const int MaxXsaveBytes = 1 << 20;

    public static string Vcpu(int index, string part) => $"vcpu{index.ToString(CultureInfo.InvariantCulture)}.{part}";

    public static string Device(string id) => DevicePrefix + id;

    public static IReadOnlyList<StateSection> ToSections(VmState state)
    {
        var sections = new List<StateSection>(state.Vcpus.Count * VcpuParts.Length + 5 + state.Devices.Count);
        foreach (var v in state.Vcpus)
        {
            void Add(string part, byte[] data) => sections.Add(new StateSection(Vcpu(v.Index, part), KvmVersion, data));
            Add(MpState, BitConverter.GetBytes(v.MpState));
            Add(Regs, AbiBytes.Of(v.Regs));
            Add(Sregs, AbiBytes.Of(v.Sregs));
            Add(Xsave, v.Xsave);
            Add(Xcrs, AbiBytes.Of(v.Xcrs));
            Add(Lapic, AbiBytes.Of(v.Lapic));
            Add(Msrs, AbiBytes.OfArray(v.Msrs));
            Add(Events, AbiBytes.Of(v.Events));
            Add(DebugRegs, AbiBytes.Of(v.DebugRegs));
        }
        sections.Add(new StateSection(Pic0, KvmVersion, AbiBytes.Of(state.Kvm.Pic0)));
        sections.Add(new StateSection(Pic1, KvmVersion, AbiBytes.Of(state.Kvm.Pic1)));
        sections.Add(new StateSection(Ioapic, KvmVersion, AbiBytes.Of(state.Kvm.Ioapic)));
        sections.Add(new StateSection(Pit2, KvmVersion, AbiBytes.Of(state.Kvm.Pit)));
        sections.Add(new StateSection(Clock, KvmVersion, AbiBytes.Of(state.Kvm.Clock)));
        foreach (var d in state.Devices) sections.Add(new StateSection(Device(d.Id), d.Version, d.Data));
        return sections;
    }

    /// <summary>Decodes and checks the sections of a VM with <paramref name="vcpus"/> vCPUs (the recorded config's count).</summary>
    /// <exception cref="StateRestoreException">A section is unknown, missing, of another version or malformed.</exception>
    public static VmState FromSections(IReadOnlyList<StateSection> sections, int vcpus)
    {
        var byId = new Dictionary<string, StateSection>(StringComparer.Ordinal);
        foreach (var s in sections)
            if (!byId.TryAdd(s.Id, s)) throw new StateRestoreException($"the snapshot has section '{s.Id}' twice");

        var used = new HashSet<string>(StringComparer.Ordinal);
        StateSection? Take(string id)
        {
            if (!byId.TryGetValue(id, out var s)) return null;
            used.Add(id);
            if (s.Version != KvmVersion)
                throw new StateRestoreException($"section '{id}' has version {s.Version}; this MiniVmm reads version {KvmVersion}");
            return s;
        }
        StateSection Required(string id) => Take(id) ?? throw new StateRestoreException($"the snapshot has no section '{id}'");
        T Struct<T>(string id) where T : unmanaged => AbiBytes.To<T>(Required(id).Data, id);

        var cpus = new VcpuState[vcpus];
        for (int i = 0; i < vcpus; i++)
        {
            var mp = Required(Vcpu(i, MpState)).Data;
            if (mp.Length != 4)
                throw new StateRestoreException($"section '{Vcpu(i, MpState)}': {mp.Length} bytes recorded, 4 expected");
            byte[] xsave = Required(Vcpu(i, Xsave)).Data;
            if (xsave.Length < 4096 || xsave.Length > MaxXsaveBytes)
                throw new StateRestoreException($"section '{Vcpu(i, Xsave)}': {xsave.Length} bytes is not an XSAVE area");
            var msrs = AbiBytes.ToArray<kvm_msr_entry>(Required(Vcpu(i, Msrs)).Data, Vcpu(i, Msrs));
            if (msrs.Length > MaxMsrs)
                throw new StateRestoreException($"section '{Vcpu(i, Msrs)}': {msrs.Length} MSRs recorded; KVM sets at most {MaxMsrs}");
            cpus[i] = new VcpuState(i, BitConverter.ToUInt32(mp), Struct<kvm_regs>(Vcpu(i, Regs)), Struct<kvm_sregs>(Vcpu(i, Sregs)),
                xsave, Struct<kvm_xcrs>(Vcpu(i, Xcrs)), Struct<kvm_lapic_state>(Vcpu(i, Lapic)), msrs,
                Struct<kvm_vcpu_events>(Vcpu(i, Events)), Struct<kvm_debugregs>(Vcpu(i, DebugRegs)));
        }

        var kvm = new KvmVmState(
            Chip(Struct<kvm_irqchip>(Pic0), IrqChipId.PicMaster, Pic0),
            Chip(Struct<kvm_irqchip>(Pic1), IrqChipId.PicSlave, Pic1),
            Chip(Struct<kvm_irqchip>(Ioapic), IrqChipId.IoApic, Ioapic),
            Struct<kvm_pit_state2>(Pit2),
            Struct<kvm_clock_data>(Clock));

        var devices = new List<DeviceState>();
        foreach (var s in sections)
        {
            if (used.Contains(s.Id)) continue;
            if (s.Id.StartsWith(DevicePrefix, StringComparison.Ordinal) && s.Id.Length > DevicePrefix.Length)
                devices.Add(new DeviceState(s.Id[DevicePrefix.Length..], s.Version, s.Data));
            else
                throw new StateRestoreException($"section '{s.Id}' belongs to nothing in this {vcpus}-vCPU VM");
        }
        return new VmState(cpus, kvm, devices);
    }

    /// <summary>The chip id inside the struct says which chip KVM_SET_IRQCHIP writes: it must match the section.</summary>
    private static kvm_irqchip Chip(kvm_irqchip chip, IrqChipId expected, string id) => chip.chip_id == (uint)expected
        ? chip
        : throw new StateRestoreException($"section '{id}' holds the state of irqchip {chip.chip_id}, not {(uint)expected}");
}
