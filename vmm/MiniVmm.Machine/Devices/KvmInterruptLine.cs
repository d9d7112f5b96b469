using KvmSharp;
using MiniVmm.Core.Bus;

namespace MiniVmm.Machine.Devices;

/// <summary>An ISA interrupt line into KVM's in-kernel PIC/IOAPIC (KVM_IRQ_LINE). Only level changes reach the kernel.</summary>
public sealed class KvmInterruptLine(VirtualMachine vm, uint irq) : IInterruptLine
{
    private int _level = -1;

    public void SetLevel(bool asserted)
    {
        int level = asserted ? 1 : 0;
        if (Interlocked.Exchange(ref _level, level) == level) return;
        vm.SetIrqLine(irq, asserted);
    }
}
