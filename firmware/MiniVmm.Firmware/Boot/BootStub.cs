using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace MiniVmm.Firmware.Boot;

/// <summary>
/// The reusable boot path from the PVH 32-bit entry to CPL3 64-bit code:
/// 32-bit entry (paging off, flat segments, EBX = hvm_start_info) → our GDT → CR4.PAE, CR3 = identity tables,
/// EFER.LME, CR0.PG → far jump to 64-bit code → data segments, per-vCPU stack and <c>ltr</c> of the per-vCPU TSS →
/// <c>iretq</c> to CPL3. Everything before the iretq runs under KVM's instruction emulator on kvm_pvm, so it is kept
/// short and uses only instructions the emulator supports (no lretq to CPL3, no 32-bit iret, no int3).
///
/// Register contract at the CPL3 targets: ESI = vCPU index (0 for the BSP), R15 as left by the AP gate (0 for the
/// BSP), RSP = top of the vCPU's stack, RFLAGS = 0x2 (IF=0: no interrupts are ever delivered), DF = 0.
/// </summary>
public static class BootStub
{
    private const uint Efer = 0xC000_0080;
    private const uint EferLme = 1 << 8;
    private const uint Cr4Pae = 1 << 5;
    private const uint Cr0PePg = 0x8000_0001;

    /// <summary>
    /// Emits the 64-bit CPL0 part at a new label (returned) into <paramref name="a"/>. The 32-bit entries jump there
    /// with ESI = vCPU index and EDI = 0 for the BSP, 1 for an AP. <paramref name="apGate"/> (optional) runs at CPL0 on
    /// APs only, after ltr, and may jump to the given halt label to park the AP; without a gate APs halt.
    /// </summary>
    public static Label EmitLongModeEntry(Assembler a, BootLayout l, Label bspUser, Label? apUser,
        Action<Assembler, Label>? apGate)
    {
        var entry = a.CreateLabel("entry64");
        var halt = a.CreateLabel("halt");
        var isAp = a.CreateLabel();
        var toUser = a.CreateLabel();

        a.Here(ref entry);
        a.mov(esi, esi);   // the upper halves of registers are undefined after the mode switch
        a.mov(edi, edi);
        a.mov(eax, (uint)BootLayout.KernelData);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
        a.mov(fs, ax);
        a.mov(gs, ax);
        // Reject impossible vCPU indexes before touching per-vCPU state: a second ltr of a busy TSS would #GP, and
        // with no IDT that is a triple fault.
        a.cmp(esi, l.MaxVcpus);
        a.jae(halt);
        a.test(edi, edi);
        a.jz(toUser);
        a.test(esi, esi);   // an AP claiming index 0 would share the BSP's TSS and stack
        a.jz(halt);

        a.Here(ref toUser);
        a.mov(eax, esi);
        a.imul(eax, eax, l.StackSize);
        a.add(eax, checked((int)l.StackBase + l.StackSize));
        a.mov(esp, eax);   // writes zero-extend: RSP = stack top
        a.mov(eax, esi);
        a.shl(eax, 4);
        a.add(eax, BootLayout.FirstTssSelector);
        a.ltr(ax);
        a.xor(r15d, r15d);
        a.test(edi, edi);
        a.jnz(isAp);
        EmitIretqToUser(a, bspUser);

        a.Here(ref isAp);
        if (apUser is { } apTarget && apGate is not null)
        {
            apGate(a, halt);
            EmitIretqToUser(a, apTarget);
        }

        // Parked vCPUs sleep here with interrupts off (HLT at CPL0 exits to / blocks in the hypervisor). Never reached by
        // CPL3 code: HLT at CPL3 would #GP.
        a.Here(ref halt);
        a.cli();
        a.hlt();
        a.jmp(halt);
        return entry;
    }

    /// <summary>iretq frame: SS, RSP, RFLAGS, CS, RIP. iretq is the only way to CPL3 this emulator gets right besides
    /// sysretq, and unlike sysretq it needs no MSR set-up.</summary>
    private static void EmitIretqToUser(Assembler a, Label target)
    {
        a.mov(rax, rsp);
        a.push(BootLayout.UserData);
        a.push(rax);
        a.push(2);
        a.push(BootLayout.UserCode);
        a.lea(rax, __[target]);
        a.push(rax);
        a.iretq();
    }

    /// <summary>
    /// Emits the 32-bit entries into a 32-bit assembler: the BSP entry (stores EBX at <paramref name="startInfoVar"/>
    /// when given) and the AP entry (ESI = vCPU index from the VMM). Returns (bsp, ap) labels.
    /// </summary>
    public static (Label Bsp, Label Ap) EmitProtectedModeEntries(Assembler a, BootLayout l, ulong entry64, ulong? startInfoVar)
    {
        var bsp = a.CreateLabel("pvh_entry");
        var ap = a.CreateLabel("ap_entry");
        var common = a.CreateLabel();

        a.Here(ref bsp);
        a.cli();
        if (startInfoVar is { } v)
            a.mov(__dword_ptr[(long)v], ebx);
        a.xor(esi, esi);
        a.xor(edi, edi);
        a.jmp(common);

        a.Here(ref ap);
        a.cli();
        a.mov(edi, 1);

        a.Here(ref common);
        a.lgdt(__[(long)l.Gdtr]);
        a.mov(eax, cr4);
        a.or(eax, Cr4Pae);
        a.mov(cr4, eax);
        a.mov(eax, checked((uint)l.Pml4));
        a.mov(cr3, eax);
        a.mov(ecx, Efer);
        a.rdmsr();
        a.or(eax, EferLme);
        a.wrmsr();
        a.mov(eax, cr0);
        a.or(eax, Cr0PePg);
        a.mov(cr0, eax);   // long mode is now active (compatibility mode until CS is reloaded)
        a.jmp(BootLayout.KernelCode, checked((uint)entry64));
        return (bsp, ap);
    }
}
