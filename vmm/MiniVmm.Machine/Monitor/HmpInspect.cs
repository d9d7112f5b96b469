using MiniVmm.Machine.Snapshots;
using System.Globalization;
using System.Text;
using KvmSharp.Abi;
using MiniVmm.Core.Runtime;
using MiniVmm.Machine.Diagnostics;
using MiniVmm.Core.Memory;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// The HMP views into a VM: `info registers` (one vCPU's registers, QEMU's layout) and `x`/`xp` (guest memory by
/// virtual or physical address). Registers are read on the vCPU's thread with the vCPUs out of the guest; memory
/// goes through bounds-checked guest-memory reads and the guest's own page tables, so any address is safe to ask for.
/// </summary>
internal sealed class HmpInspect(Vm vm, VmRunState runState)
{
    /// <summary>Most units one `x`/`xp` prints (QEMU prints whatever is asked; a monitor line should stay readable).</summary>
    public const int MaxUnits = 4096;

    public string Registers(int cpu)
    {
        var (regs, sregs) = ReadState(cpu);
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"CPU#{cpu}\n");
        sb.Append(inv, $"RAX={regs.rax:x16} RBX={regs.rbx:x16} RCX={regs.rcx:x16} RDX={regs.rdx:x16}\n");
        sb.Append(inv, $"RSI={regs.rsi:x16} RDI={regs.rdi:x16} RBP={regs.rbp:x16} RSP={regs.rsp:x16}\n");
        sb.Append(inv, $"R8 ={regs.r8:x16} R9 ={regs.r9:x16} R10={regs.r10:x16} R11={regs.r11:x16}\n");
        sb.Append(inv, $"R12={regs.r12:x16} R13={regs.r13:x16} R14={regs.r14:x16} R15={regs.r15:x16}\n");
        sb.Append(inv, $"RIP={regs.rip:x16} RFL={regs.rflags:x8} [{Flags(regs.rflags)}] CPL={sregs.cs.dpl}\n");
        Segment(sb, "ES", sregs.es); Segment(sb, "CS", sregs.cs); Segment(sb, "SS", sregs.ss);
        Segment(sb, "DS", sregs.ds); Segment(sb, "FS", sregs.fs); Segment(sb, "GS", sregs.gs);
        Segment(sb, "LDT", sregs.ldt); Segment(sb, "TR", sregs.tr);
        sb.Append(inv, $"GDT=     {sregs.gdt.@base:x16} {sregs.gdt.limit:x8}\n");
        sb.Append(inv, $"IDT=     {sregs.idt.@base:x16} {sregs.idt.limit:x8}\n");
        sb.Append(inv, $"CR0={sregs.cr0:x8} CR2={sregs.cr2:x16} CR3={sregs.cr3:x16} CR4={sregs.cr4:x8}\n");
        sb.Append(inv, $"EFER={sregs.efer:x16} APIC_BASE={sregs.apic_base:x16}\n");
        return sb.ToString();
    }

    /// <summary>`x /fmt addr` (virtual, through vCPU <paramref name="cpu"/>'s page tables) or `xp /fmt addr` (physical).</summary>
    public string Examine(string? format, string addressText, bool physical, int cpu)
    {
        var (count, kind, size) = ParseFormat(format);
        ulong address = ParseAddress(addressText);
        kvm_sregs sregs = physical ? default : ReadState(cpu).Sregs;
        int perLine = size switch { 1 => 8, 2 => 8, 4 => 4, _ => 2 };
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        Span<byte> unit = stackalloc byte[8];
        for (int i = 0; i < count; i++)
        {
            ulong at = address + (ulong)(i * size);
            if (i % perLine == 0)
            {
                if (i > 0) sb.Append('\n');
                sb.Append(inv, $"{at:x16}:");
            }
            if (!TryRead(at, unit[..size], physical, sregs))
            {
                sb.Append(physical ? " Cannot access memory" : " Cannot access memory (not mapped)");
                break;
            }
            ulong v = size switch
            {
                1 => unit[0],
                2 => BitConverter.ToUInt16(unit),
                4 => BitConverter.ToUInt32(unit),
                _ => BitConverter.ToUInt64(unit),
            };
            sb.Append(' ').Append(kind switch
            {
                'd' => Signed(v, size).ToString(inv),
                'u' => v.ToString(inv),
                'o' => "0" + Convert.ToString((long)v, 8),
                'c' => size == 1 && v is >= 0x20 and < 0x7f ? $"'{(char)v}'" : $"'\\x{v:x2}'",
                _ => "0x" + v.ToString("x" + (size * 2), inv),
            });
        }
        return sb.Append('\n').ToString();
    }

    private bool TryRead(ulong address, Span<byte> destination, bool physical, in kvm_sregs sregs)
    {
        for (int b = 0; b < destination.Length; b++)
        {
            ulong gpa = address + (ulong)b;
            if (!physical && !GuestPageWalker.TryTranslate(vm.Memory, sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer, gpa, out gpa)) return false;
            if (!vm.Memory.Contains(new GuestAddress(gpa), 1)) return false;
            destination[b] = vm.Memory.Read<byte>(new GuestAddress(gpa));
        }
        return true;
    }

    private (kvm_regs Regs, kvm_sregs Sregs) ReadState(int cpu)
    {
        if (cpu < 0 || cpu >= vm.VcpuThreads.Count) throw QmpException.Generic($"CPU {cpu} does not exist (0..{vm.VcpuThreads.Count - 1})");
        VcpuThread thread = vm.VcpuThreads[cpu];
        try
        {
            return runState.WithVcpusOut(() => thread.State is VcpuRunState.Stopped
                ? throw QmpException.Generic($"CPU {cpu} has stopped")
                : thread.InvokePaused(v => (v.GetRegs(), v.GetSregs())));
        }
        catch (TimeoutException e) { throw QmpException.Generic("cannot stop the vCPUs to read them: " + e.Message); }
        catch (InvalidOperationException e) { throw QmpException.Generic(e.Message); }
    }

    /// <summary>QEMU's /[count][format][size]: format x d u o c, size b h w g (defaults 1, x, w).</summary>
    internal static (int Count, char Kind, int Size) ParseFormat(string? format)
    {
        if (format is null) return (1, 'x', 4);
        if (!format.StartsWith('/')) throw QmpException.Generic($"'{format}' is not a format such as /16xb");
        int i = 1;
        while (i < format.Length && char.IsAsciiDigit(format[i])) i++;
        int count = 1;
        if (i > 1 && (!int.TryParse(format.AsSpan(1, i - 1), NumberStyles.None, CultureInfo.InvariantCulture, out count) || count < 1 || count > MaxUnits))
            throw QmpException.Generic($"count must be 1..{MaxUnits}");
        char kind = 'x';
        int size = 4;
        foreach (char c in format[i..])
        {
            switch (c)
            {
                case 'x' or 'd' or 'u' or 'o' or 'c': kind = c; if (c == 'c') size = 1; break;
                case 'b': size = 1; break;
                case 'h': size = 2; break;
                case 'w': size = 4; break;
                case 'g': size = 8; break;
                default: throw QmpException.Generic($"invalid format character '{c}' (formats x d u o c, sizes b h w g)");
            }
        }
        return (count, kind, size);
    }

    private static ulong ParseAddress(string text)
    {
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        if (ulong.TryParse(hex ? text.AsSpan(2) : text.AsSpan(), hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong v))
            return v;
        throw QmpException.Generic($"'{text}' is not an address (0x... or decimal)");
    }

    private static long Signed(ulong v, int size) => size switch
    {
        1 => (sbyte)v,
        2 => (short)v,
        4 => (int)v,
        _ => (long)v,
    };

    private static string Flags(ulong f)
    {
        var sb = new StringBuilder();
        sb.Append((f & (1 << 11)) != 0 ? 'O' : '-').Append((f & (1 << 10)) != 0 ? 'D' : '-').Append((f & (1 << 9)) != 0 ? 'I' : '-');
        sb.Append((f & (1 << 7)) != 0 ? 'S' : '-').Append((f & (1 << 6)) != 0 ? 'Z' : '-').Append((f & (1 << 4)) != 0 ? 'A' : '-');
        sb.Append((f & (1 << 2)) != 0 ? 'P' : '-').Append((f & 1) != 0 ? 'C' : '-');
        return sb.ToString();
    }

    private static void Segment(StringBuilder sb, string name, in kvm_segment s) =>
        sb.Append(CultureInfo.InvariantCulture, $"{name,-3}={s.selector:x4} {s.@base:x16} {s.limit:x8} type={s.type:x} dpl={s.dpl} {(s.present != 0 ? "P" : "-")}{(s.l != 0 ? " L" : "")}{(s.db != 0 ? " DB" : "")}\n");
}
