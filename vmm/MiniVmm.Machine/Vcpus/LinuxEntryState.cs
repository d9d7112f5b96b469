using KvmSharp;
using KvmSharp.Abi;
using MiniVmm.Core.Boot;

namespace MiniVmm.Machine.Vcpus;

/// <summary>
/// The register state of the Linux x86 64-bit boot protocol at the kernel's 64-bit entry (boot.rst, "64-bit Boot
/// Protocol"): long mode with paging on through the loader's identity page tables, a GDT with flat __BOOT_CS (0x10,
/// execute/read) and __BOOT_DS (0x18, read/write), CS = __BOOT_CS, DS = ES = SS = __BOOT_DS, interrupts off, RSI = the
/// zero page. Only the boot CPU starts this way; the kernel wakes the others with INIT/SIPI.
/// </summary>
public static class LinuxEntryState
{
    private const ulong Cr0ProtectionEnable = 1UL << 0;
    private const ulong Cr0ExtensionType = 1UL << 4;
    private const ulong Cr0NumericError = 1UL << 5;
    private const ulong Cr0Paging = 1UL << 31;
    private const ulong Cr4Pae = 1UL << 5;
    private const ulong EferLme = 1UL << 8;
    private const ulong EferLma = 1UL << 10;

    public static void Apply(Vcpu vcpu, LinuxBootInfo boot)
    {
        var sregs = vcpu.GetSregs();
        sregs.cs = new kvm_segment
        {
            @base = 0, limit = 0xffffffff, selector = LinuxLoader.BootCodeSelector, type = 0xb, present = 1, dpl = 0,
            db = 0, s = 1, l = 1, g = 1,
        };
        var data = new kvm_segment
        {
            @base = 0, limit = 0xffffffff, selector = LinuxLoader.BootDataSelector, type = 0x3, present = 1, dpl = 0,
            db = 1, s = 1, l = 0, g = 1,
        };
        sregs.ds = data; sregs.es = data; sregs.fs = data; sregs.gs = data; sregs.ss = data;
        sregs.tr = new kvm_segment { @base = 0, limit = 0x67, selector = 0, type = 0xb, present = 1, s = 0 };
        sregs.ldt = new kvm_segment { @base = 0, limit = 0xffff, selector = 0, type = 0x2, present = 1, s = 0 };
        sregs.gdt = new kvm_dtable { @base = boot.GdtBase, limit = boot.GdtLimit };
        sregs.idt = default;
        sregs.cr0 = Cr0ProtectionEnable | Cr0ExtensionType | Cr0NumericError | Cr0Paging;
        sregs.cr3 = boot.PageTableRoot;
        sregs.cr4 = Cr4Pae;
        sregs.efer = EferLme | EferLma;
        vcpu.SetSregs(sregs);

        // RFLAGS.IF clear: interrupts off, as the protocol requires.
        vcpu.SetRegs(new kvm_regs { rip = boot.Entry, rflags = 0x2, rsi = boot.BootParamsGpa, rsp = boot.StackPointer });
    }
}
