using KvmSharp;
using KvmSharp.Abi;

namespace MiniVmm.Machine.Vcpus;

/// <summary>
/// The register state the PVH boot protocol defines at the 32-bit entry: protected mode, paging off, flat 4 GiB code
/// and data segments, EBX = physical address of hvm_start_info. MiniVmm starts application processors the same way at
/// the entry the image declares, with ESI = vCPU index.
/// </summary>
public static class PvhEntryState
{
    private const ulong Cr0ProtectionEnable = 1UL << 0;
    private const ulong Cr0ExtensionType = 1UL << 4;

    public static void Apply(Vcpu vcpu, uint entry, uint startInfoGpa, int vcpuIndex)
    {
        var sregs = vcpu.GetSregs();
        sregs.cs = FlatSegment(selector: 0x10, type: 0xb);  // execute/read, accessed
        var data = FlatSegment(selector: 0x18, type: 0x3);  // read/write, accessed
        sregs.ds = data; sregs.es = data; sregs.fs = data; sregs.gs = data; sregs.ss = data;
        sregs.tr = new kvm_segment { @base = 0, limit = 0x67, selector = 0, type = 0xb, present = 1, s = 0 };
        sregs.ldt = new kvm_segment { @base = 0, limit = 0xffff, selector = 0, type = 0x2, present = 1, s = 0 };
        sregs.gdt = default;
        sregs.idt = default;
        sregs.cr0 = Cr0ProtectionEnable | Cr0ExtensionType;
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.efer = 0;
        vcpu.SetSregs(sregs);

        vcpu.SetRegs(new kvm_regs { rip = entry, rflags = 0x2, rbx = startInfoGpa, rsi = (ulong)vcpuIndex });
    }

    private static kvm_segment FlatSegment(ushort selector, byte type) => new()
    {
        @base = 0, limit = 0xffffffff, selector = selector, type = type, present = 1, dpl = 0, db = 1, s = 1, l = 0, g = 1,
    };
}
