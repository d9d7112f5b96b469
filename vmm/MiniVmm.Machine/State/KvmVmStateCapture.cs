using KvmSharp;
using KvmSharp.Abi;

namespace MiniVmm.Machine.State;

/// <summary>Reads and applies KVM's VM-wide objects (PICs, IOAPIC, PIT, kvmclock).</summary>
internal static class KvmVmStateCapture
{
    public static KvmVmState Capture(VirtualMachine vm) => new(
        vm.GetIrqChip(IrqChipId.PicMaster),
        vm.GetIrqChip(IrqChipId.PicSlave),
        vm.GetIrqChip(IrqChipId.IoApic),
        vm.GetPit2(),
        vm.GetClock());

    /// <summary>Applies recorded values; KVM refusing one is a bad file, reported with its section.</summary>
    /// <exception cref="StateRestoreException">KVM refused a value.</exception>
    public static void Apply(VirtualMachine vm, KvmVmState state)
    {
        Set(VmStateSections.Pic0, () => vm.SetIrqChip(state.Pic0));
        Set(VmStateSections.Pic1, () => vm.SetIrqChip(state.Pic1));
        Set(VmStateSections.Ioapic, () => vm.SetIrqChip(state.Ioapic));
        Set(VmStateSections.Pit2, () => vm.SetPit2(state.Pit));
        // kvmclock goes back to the recorded value before any vCPU runs, so the guest sees no jump backwards.
        Set(VmStateSections.Clock, () => vm.SetClock(state.Clock));
    }

    private static void Set(string section, Action set)
    {
        try { set(); }
        catch (KvmException e)
        {
            throw new StateRestoreException($"section '{section}': KVM refused the recorded value ({e.Message})", e);
        }
    }
}
