using Iced.Intel;
using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Runtime;
using static Iced.Intel.AssemblerRegisters;
using static MiniVmm.Firmware.Guests.Writer.WriterLayout;
using St = MiniVmm.Firmware.GuestAbi.Status;
using Vc = MiniVmm.Firmware.GuestAbi.VcpuStatus;

namespace MiniVmm.Firmware.Guests.Writer;

/// <summary>
/// Progress reporting (BSP only): <c>sum_totals</c> folds the per-vCPU blocks into the status page totals and
/// <c>report</c> prints <c>writer: gen=G pages=N fails=F rate=K pages/s</c>, where G is the number of sweeps every
/// running vCPU has completed and K is the page-write rate since the previous line. Both preserve all registers
/// except the documented outputs.
/// </summary>
internal sealed class WriterReport
{
    private readonly Runtime64 _rt;
    private Label _report, _sumTotals;

    public WriterReport(Assembler a, Runtime64 rt)
    {
        _rt = rt;
        _report = a.CreateLabel("report");
        _sumTotals = a.CreateLabel("sum_totals");
    }

    /// <summary>Prints a progress line and schedules the next one. Preserves everything.</summary>
    public Label Report => _report;
    /// <summary>Out: RAX = total pages written, RCX = min generation over running vCPUs; also stores
    /// total_pages_written. Preserves everything else.</summary>
    public Label SumTotals => _sumTotals;

    public void Emit(Assembler a)
    {
        EmitSumTotals(a);

        var zero = a.CreateLabel();
        var have = a.CreateLabel();
        a.Here(ref _report);
        a.push(rax); a.push(rcx); a.push(rdx); a.push(rsi);
        a.push(r8); a.push(r9); a.push(r10); a.push(r11);
        a.call(_sumTotals);
        a.mov(r8, rax);   // pages
        a.mov(r9, rcx);   // generation
        a.rdtsc();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.mov(rsi, rax);  // now
        // Time must never run backwards, also not across a snapshot and restore: count it if it does.
        var clockOk = a.CreateLabel();
        a.cmp(rsi, __qword_ptr[(long)Var.LastReportTsc]);
        a.jae(clockOk);
        a.inc(__qword_ptr[(long)S(St.ClockBackwards)]);
        a.Here(ref clockOk);
        // rate = dPages * tsc_khz * 1000 / dTsc, with a 128-bit product so long intervals don't overflow.
        a.mov(rax, r8);
        a.sub(rax, __qword_ptr[(long)Var.LastReportPages]);
        a.mul(__qword_ptr[(long)Var.TscKhz]);
        a.mov(r10d, 1000);
        a.mul(r10);
        a.mov(r10, rsi);
        a.sub(r10, __qword_ptr[(long)Var.LastReportTsc]);
        a.jz(zero);
        a.cmp(rdx, r10);   // quotient would not fit: cannot happen with sane clocks, but #DE would triple fault
        a.jae(zero);
        a.div(r10);
        a.jmp(have);
        a.Here(ref zero);
        a.xor(eax, eax);
        a.Here(ref have);
        a.mov(r11, rax);

        _rt.LineBegin(a);
        _rt.Print(a, "writer: gen=");
        _rt.PrintDec(a, r9);
        _rt.Print(a, " pages=");
        _rt.PrintDec(a, r8);
        _rt.Print(a, " fails=");
        _rt.PrintDec(a, S(St.TotalFailures));
        _rt.Print(a, " rate=");
        _rt.PrintDec(a, r11);
        _rt.Print(a, " pages/s");
        _rt.LineEnd(a);

        a.mov(__qword_ptr[(long)Var.LastReportTsc], rsi);
        a.mov(__qword_ptr[(long)Var.LastReportPages], r8);
        a.add(rsi, __qword_ptr[(long)Var.ReportCycles]);
        a.mov(__qword_ptr[(long)Var.NextReport], rsi);
        a.pop(r11); a.pop(r10); a.pop(r9); a.pop(r8);
        a.pop(rsi); a.pop(rdx); a.pop(rcx); a.pop(rax);
        a.ret();
    }

    private void EmitSumTotals(Assembler a)
    {
        var loop = a.CreateLabel();
        var notLess = a.CreateLabel();
        a.Here(ref _sumTotals);
        a.push(rdx); a.push(rsi);
        a.xor(eax, eax);
        a.mov(rcx, -1L);
        a.mov(rsi, (long)GuestAbi.VcpuBlockGpa(0));
        a.mov(rdx, __qword_ptr[(long)Var.CpusRunning]);
        a.Here(ref loop);
        a.add(rax, __qword_ptr[rsi + Vc.PagesWritten]);
        a.cmp(rcx, __qword_ptr[rsi + Vc.Generation]);
        a.jbe(notLess);
        a.mov(rcx, __qword_ptr[rsi + Vc.Generation]);
        a.Here(ref notLess);
        a.add(rsi, GuestAbi.StatusVcpuBlockSize);
        a.dec(rdx);
        a.jnz(loop);
        a.mov(__qword_ptr[(long)S(St.TotalPagesWritten)], rax);
        a.pop(rsi); a.pop(rdx);
        a.ret();
    }
}
