using Iced.Intel;
using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Runtime;
using static Iced.Intel.AssemblerRegisters;
using static MiniVmm.Firmware.Guests.Writer.WriterLayout;
using St = MiniVmm.Firmware.GuestAbi.Status;
using Vc = MiniVmm.Firmware.GuestAbi.VcpuStatus;

namespace MiniVmm.Firmware.Guests.Writer;

/// <summary>
/// The writer's hot loop (CPL3, native speed), one call per vCPU: <c>worker</c> with R15 = slot (0 = BSP).
/// Sweep g checks that the three words of each page (first, middle, last) hold g-1 and then writes g into them, first
/// word first and last word last, so a page copied while half-written is caught later. The slice of the buffer is
/// slot*pages/running .. (slot+1)*pages/running.
///
/// Registers in the loop: RBX = status block, R8 = slice base address, R9 = slice pages, R10 = g, R11 = g-1,
/// R12 = loop counter, R13 = rand mask (2^k-1), R14 = pacing deadline (TSC), RBP = sweep start TSC, RSI = LCG state,
/// RDI = pages written by this vCPU; RAX/RCX/RDX scratch; [RSP] = LCG increment, [RSP+8] = LCG multiplier.
/// </summary>
internal sealed class WriterSweep
{
    private const int Middle = 2048;
    private const int Last = 4088;
    private readonly Runtime64 _rt;
    private readonly Label _report;
    private Label _worker, _recordFailure;
    private readonly List<Action> _coldPaths = [];

    public WriterSweep(Assembler a, Runtime64 rt, Label report)
    {
        _rt = rt;
        _report = report;
        _worker = a.CreateLabel("worker");
        _recordFailure = a.CreateLabel("record_failure");
    }

    public Label Worker => _worker;

    public void Emit(Assembler a)
    {
        var maskDone = a.CreateLabel();
        var sweep = a.CreateLabel();
        var go = a.CreateLabel();
        var rand = a.CreateLabel();
        var sLoop = a.CreateLabel();
        var rLoop = a.CreateLabel();
        var rSkip = a.CreateLabel();
        var swept = a.CreateLabel();
        var noSnap = a.CreateLabel();
        var finished = a.CreateLabel();

        a.Here(ref _worker);
        a.push(rbp);
        a.sub(rsp, 16);
        a.mov(rbx, r15);
        a.shl(rbx, 6);
        a.add(rbx, (int)GuestAbi.VcpuBlockGpa(0));
        // Slice bounds (pages * 16 cannot overflow: pages <= MaxBufferPages).
        a.mov(rax, r15);
        a.mul(__qword_ptr[(long)Var.Pages]);
        a.div(__qword_ptr[(long)Var.CpusRunning]);
        a.mov(r8, rax);
        a.lea(rax, __[r15 + 1]);
        a.mul(__qword_ptr[(long)Var.Pages]);
        a.div(__qword_ptr[(long)Var.CpusRunning]);
        a.mov(r9, rax);
        a.sub(r9, r8);
        a.shl(r8, 12);
        a.add(r8, __qword_ptr[(long)Var.BufferBase]);
        // rand visits 0..2^k-1 with a full-period LCG and skips indexes >= slice pages (< half of the steps).
        a.xor(r13d, r13d);
        a.cmp(r9, 1);
        a.jbe(maskDone);
        a.lea(rcx, __[r9 - 1]);
        a.bsr(rcx, rcx);
        a.inc(ecx);
        a.mov(r13d, 1);
        a.shl(r13, cl);
        a.dec(r13);
        a.Here(ref maskDone);

        a.mov(__qword_ptr[rbx + Vc.State], 1);
        a.xor(edi, edi);
        a.mov(r10d, 1);
        Rdtsc(a);
        a.mov(r14, rax);

        a.Here(ref sweep);
        a.mov(rax, __qword_ptr[(long)Var.Sweeps]);
        a.test(rax, rax);
        a.jz(go);
        a.cmp(r10, rax);
        a.ja(finished);
        a.Here(ref go);
        Rdtsc(a);
        a.mov(rbp, rax);
        a.lea(r11, __[r10 - 1]);
        a.cmp(__qword_ptr[(long)Var.Pattern], 0);
        a.jne(rand);

        // pattern=seq: pages in order.
        a.xor(r12d, r12d);
        a.Here(ref sLoop);
        a.cmp(r12, r9);
        a.jae(swept);
        a.mov(rax, r12);
        VisitPage(a);
        a.inc(r12);
        a.jmp(sLoop);

        // pattern=rand: x' = (a*x + c) mod 2^k has full period when c is odd and a = 1 mod 4; a, c and the start
        // are derived from g, so every sweep is a different permutation and each page is still written exactly once.
        a.Here(ref rand);
        a.test(r9, r9);
        a.jz(swept);
        a.mov(rax, 0x9E37_79B9_7F4A_7C15UL);
        a.imul(rax, r10);
        a.mov(rsi, rax);
        a.and(rsi, r13);
        a.mov(rcx, rax);
        a.shr(rcx, 11);
        a.or(rcx, 1);
        a.mov(__qword_ptr[rsp], rcx);
        a.shr(rax, 27);
        a.shl(rax, 2);
        a.or(rax, 1);
        a.mov(__qword_ptr[rsp + 8], rax);
        a.lea(r12, __[r13 + 1]);
        a.Here(ref rLoop);
        a.mov(rax, rsi);
        a.imul(rsi, __qword_ptr[rsp + 8]);
        a.add(rsi, __qword_ptr[rsp]);
        a.and(rsi, r13);
        a.cmp(rax, r9);
        a.jae(rSkip);
        VisitPage(a);
        a.Here(ref rSkip);
        a.dec(r12);
        a.jnz(rLoop);

        a.Here(ref swept);
        a.mov(__qword_ptr[rbx + Vc.Generation], r10);
        Rdtsc(a);
        a.sub(rax, rbp);
        a.mov(__qword_ptr[rbx + Vc.LastSweepTscCycles], rax);
        // snapshot_after=N: the BSP asks once, after its own sweep N. Print first, so a restored guest (which resumes
        // after the OUT) does not print the line again.
        a.test(r15, r15);
        a.jnz(noSnap);
        a.cmp(r10, __qword_ptr[(long)Var.SnapshotAfter]);
        a.jne(noSnap);
        _rt.LineBegin(a);
        _rt.Print(a, "writer: requesting snapshot after sweep ");
        _rt.PrintDec(a, r10);
        _rt.LineEnd(a);
        a.inc(__qword_ptr[(long)S(St.SnapshotRequests)]);
        a.mov(edx, (uint)GuestAbi.ControlPort);
        a.mov(eax, GuestAbi.ControlSnapshotRequest);
        a.@out(dx, eax);
        a.Here(ref noSnap);
        a.inc(r10);
        a.jmp(sweep);

        a.Here(ref finished);
        a.mov(__qword_ptr[rbx + Vc.State], 2);
        a.add(rsp, 16);
        a.pop(rbp);
        a.ret();

        foreach (var cold in _coldPaths)
            cold();
        EmitRecordFailure(a);
    }

    private static void Rdtsc(Assembler a)
    {
        a.rdtsc();
        a.shl(rdx, 32);
        a.or(rax, rdx);
    }

    /// <summary>Visit the page whose slice index is in RAX: check, write, count, pace, report.</summary>
    private void VisitPage(Assembler a)
    {
        var write = a.CreateLabel();
        var unpaced = a.CreateLabel();
        var spin = a.CreateLabel();
        var late = a.CreateLabel();
        var advance = a.CreateLabel();
        var next = a.CreateLabel();
        var doReport = a.CreateLabel();
        var f0 = a.CreateLabel();
        var f1 = a.CreateLabel();
        var f2 = a.CreateLabel();

        a.mov(__qword_ptr[rbx + Vc.CurrentPageIndex], rax);
        a.shl(rax, 12);
        a.add(rax, r8);
        a.cmp(__qword_ptr[rax], r11);
        a.jne(f0);
        a.cmp(__qword_ptr[rax + Middle], r11);
        a.jne(f1);
        a.cmp(__qword_ptr[rax + Last], r11);
        a.jne(f2);
        a.Here(ref write);
        a.mov(__qword_ptr[rax], r10);
        a.mov(__qword_ptr[rax + Middle], r10);
        a.mov(__qword_ptr[rax + Last], r10);
        a.inc(rdi);
        a.mov(__qword_ptr[rbx + Vc.PagesWritten], rdi);

        // Pacing: one page every CyclesPerPage TSC cycles; if we fell behind by more than BacklogCycles, forget the
        // excess instead of bursting to catch up. With prefill=1 the first sweep (generation 1) is not paced, so
        // the whole buffer is non-zero before paced experiments begin.
        var paced = a.CreateLabel();
        a.cmp(r10, 1);
        a.jne(paced);
        a.cmp(__qword_ptr[(long)Var.Prefill], 0);
        a.jne(unpaced);
        a.Here(ref paced);
        a.mov(rcx, __qword_ptr[(long)Var.CyclesPerPage]);
        a.test(rcx, rcx);
        a.jz(unpaced);
        Rdtsc(a);
        a.cmp(rax, r14);
        a.jae(late);
        a.Here(ref spin);
        a.pause();
        Rdtsc(a);
        a.cmp(rax, r14);
        a.jb(spin);
        a.jmp(advance);
        a.Here(ref late);
        a.mov(rdx, rax);
        a.sub(rdx, r14);
        a.cmp(rdx, __qword_ptr[(long)Var.BacklogCycles]);
        a.jbe(advance);
        a.mov(r14, rax);
        a.sub(r14, __qword_ptr[(long)Var.BacklogCycles]);
        a.Here(ref advance);
        a.add(r14, rcx);
        a.test(r15, r15);          // only the BSP reports
        a.jnz(next);
        a.cmp(rax, __qword_ptr[(long)Var.NextReport]);
        a.jae(doReport);
        a.jmp(next);
        a.Here(ref unpaced);      // unpaced: look at the clock every 1024 pages only
        a.test(r15, r15);
        a.jnz(next);
        a.test(edi, 1023);
        a.jnz(next);
        Rdtsc(a);
        a.cmp(rax, __qword_ptr[(long)Var.NextReport]);
        a.jb(next);
        a.Here(ref doReport);
        a.call(_report);
        a.Here(ref next);

        _coldPaths.Add(() =>
        {
            a.Here(ref f0);
            a.lea(rcx, __[rax]);
            a.call(_recordFailure);
            a.jmp(write);
            a.Here(ref f1);
            a.lea(rcx, __[rax + Middle]);
            a.call(_recordFailure);
            a.jmp(write);
            a.Here(ref f2);
            a.lea(rcx, __[rax + Last]);
            a.call(_recordFailure);
            a.jmp(write);
        });
    }

    /// <summary>record_failure: RCX = address of the mismatching word, R11 = expected, RBX = status block.
    /// Counts it, records the first failure (cmpxchg on first_failure_gpa), prints at most MaxFailLines lines.</summary>
    private void EmitRecordFailure(Assembler a)
    {
        var notFirst = a.CreateLabel();
        var quiet = a.CreateLabel();
        a.Here(ref _recordFailure);
        a.push(rax); a.push(rdx);
        a.mov(rdx, __qword_ptr[rcx]);
        a.inc(__qword_ptr[rbx + Vc.Failures]);
        a.@lock.inc(__qword_ptr[(long)S(St.TotalFailures)]);
        a.xor(eax, eax);
        a.@lock.cmpxchg(__qword_ptr[(long)S(St.FirstFailureGpa)], rcx);
        a.jne(notFirst);
        a.mov(__qword_ptr[(long)S(St.FirstFailureExpected)], r11);
        a.mov(__qword_ptr[(long)S(St.FirstFailureFound)], rdx);
        a.Here(ref notFirst);
        a.mov(eax, 1);
        a.@lock.xadd(__dword_ptr[(long)Var.FailLines], eax);
        a.cmp(eax, GuestAbi.MaxFailLines);
        a.jae(quiet);
        _rt.LineBegin(a);
        _rt.Print(a, "writer: FAIL gpa=");
        _rt.PrintHex(a, rcx);
        _rt.Print(a, " expected=");
        _rt.PrintDec(a, r11);
        _rt.Print(a, " found=");
        _rt.PrintDec(a, rdx);
        _rt.LineEnd(a);
        a.Here(ref quiet);
        a.pop(rdx); a.pop(rax);
        a.ret();
    }
}
