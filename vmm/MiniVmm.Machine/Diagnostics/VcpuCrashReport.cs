using System.Text;
using Iced.Intel;
using KvmSharp;
using KvmSharp.Abi;
using MiniVmm.Core.Memory;

namespace MiniVmm.Machine.Diagnostics;

/// <summary>A readable account of a vCPU that stopped on a fatal exit: registers and the instruction at RIP.</summary>
public static class VcpuCrashReport
{
    public static string Describe(Vcpu vcpu, GuestMemory memory, string what)
    {
        var sb = new StringBuilder();
        sb.Append("vcpu").Append(vcpu.Index).Append(": ").AppendLine(what);
        try
        {
            var r = vcpu.GetRegs();
            var s = vcpu.GetSregs();
            sb.AppendLine($"  rip={r.rip:x16} rsp={r.rsp:x16} rflags={r.rflags:x8}");
            sb.AppendLine($"  rax={r.rax:x16} rbx={r.rbx:x16} rcx={r.rcx:x16} rdx={r.rdx:x16}");
            sb.AppendLine($"  rsi={r.rsi:x16} rdi={r.rdi:x16} rbp={r.rbp:x16}");
            sb.AppendLine($"  cr0={s.cr0:x} cr3={s.cr3:x} cr4={s.cr4:x} efer={s.efer:x} cs={s.cs.selector:x}(l={s.cs.l} db={s.cs.db} dpl={s.cs.dpl})");
            sb.Append("  instruction: ").AppendLine(Disassemble(memory, r, s));
        }
        catch (Exception e)
        {
            sb.AppendLine("  (registers unavailable: " + e.Message + ")");
        }
        return sb.ToString().TrimEnd();
    }

    public static string Disassemble(GuestMemory memory, in kvm_regs regs, in kvm_sregs sregs)
    {
        ulong linear = sregs.cs.@base + regs.rip;
        if (!GuestPageWalker.TryTranslate(memory, sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer, linear, out ulong phys))
            return $"(rip 0x{linear:x} is not mapped by the guest's page tables)";
        var bytes = new byte[15];
        int n = 0;
        while (n < bytes.Length && memory.Contains(new GuestAddress(phys + (ulong)n), 1)) n++;
        if (n == 0) return $"(rip 0x{linear:x} -> 0x{phys:x} is outside guest RAM)";
        memory.Read(new GuestAddress(phys), bytes.AsSpan(0, n));
        int bitness = sregs.cs.l != 0 ? 64 : sregs.cs.db != 0 ? 32 : 16;
        var decoder = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(bytes, 0, n));
        decoder.IP = regs.rip;
        decoder.Decode(out var instr);
        var output = new StringOutput();
        new NasmFormatter().Format(instr, output);
        string hex = Convert.ToHexString(bytes, 0, Math.Max(1, instr.Length));
        return $"{output.ToStringAndReset()}   [{hex}] at gpa 0x{phys:x}, {bitness}-bit";
    }
}
