using KvmSharp.Abi;

namespace MiniVmm.Machine.State;

/// <summary>
/// Everything a snapshot records about a VM besides RAM and its configuration: the vCPUs, KVM's VM-wide objects and
/// the devices. <see cref="VmStateSections"/> maps it to and from the file's state sections; nothing else knows
/// section ids.
/// </summary>
internal sealed record VmState(IReadOnlyList<VcpuState> Vcpus, KvmVmState Kvm, IReadOnlyList<DeviceState> Devices);

/// <summary>What KVM keeps for one vCPU, as its kernel structs (the XSAVE area as KVM's bytes). Every part is required:
/// the VM needs the KVM capabilities for all of them (<see cref="Vm"/>).</summary>
internal sealed record VcpuState(
    int Index,
    uint MpState,
    kvm_regs Regs,
    kvm_sregs Sregs,
    byte[] Xsave,
    kvm_xcrs Xcrs,
    kvm_lapic_state Lapic,
    kvm_msr_entry[] Msrs,
    kvm_vcpu_events Events,
    kvm_debugregs DebugRegs);

/// <summary>KVM's in-kernel VM objects: the two 8259 PICs, the IOAPIC, the PIT and kvmclock.</summary>
internal sealed record KvmVmState(kvm_irqchip Pic0, kvm_irqchip Pic1, kvm_irqchip Ioapic, kvm_pit_state2 Pit, kvm_clock_data Clock);

/// <summary>
/// One device's saved state: its id in the device manager, the version of its encoding and the bytes the device itself
/// wrote (<see cref="MiniVmm.Core.State.IPersistent"/>). Opaque to everything but the device.
/// </summary>
public sealed record DeviceState(string Id, ushort Version, byte[] Data);
