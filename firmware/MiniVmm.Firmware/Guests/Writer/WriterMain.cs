using Iced.Intel;
using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Runtime;
using static Iced.Intel.AssemblerRegisters;
using static MiniVmm.Firmware.Guests.Writer.WriterLayout;
using St = MiniVmm.Firmware.GuestAbi.Status;
using Vc = MiniVmm.Firmware.GuestAbi.VcpuStatus;

namespace MiniVmm.Firmware.Guests.Writer;

/// <summary>
/// The writer's control flow around the hot loop.
/// BSP (CPL3): status header, defaults, command line, memmap check, start line, release APs, wait ≤ 1 s for them to
/// check in, close the roster, pacing set-up, start, own slice, wait for the APs, totals, done line, exit.
/// AP (CPL0 gate, emulated): wait for release; vCPUs not wanted or arriving after the roster closed halt at CPL0;
/// the others take a slot and go to CPL3, wait for start, sweep their slice, count themselves done and spin.
/// </summary>
internal sealed class WriterMain
{
    private readonly Runtime64 _rt;
    private readonly WriterCmdline _cmdline;
    private readonly WriterSweep _sweep;
    private readonly WriterReport _report;
    private Label _checkMemmap;

    public WriterMain(Assembler a, Runtime64 rt, WriterCmdline cmdline, WriterSweep sweep, WriterReport report)
    {
        _rt = rt;
        _cmdline = cmdline;
        _sweep = sweep;
        _report = report;
        _checkMemmap = a.CreateLabel("check_memmap");
    }

    /// <summary>AP gate at CPL0 (see <see cref="Boot.BootStub"/>): ESI = vCPU index; leaves R15 = slot.</summary>
    public static void EmitApGate(Assembler a, Label halt)
    {
        var wait = a.CreateLabel();
        a.Here(ref wait);   // no PAUSE here: keep to instructions the emulator surely handles
        a.mov(eax, __dword_ptr[(long)Var.Release]);
        a.test(eax, eax);
        a.jz(wait);
        a.cmp(esi, __dword_ptr[(long)Var.CpusRequested]);
        a.jae(halt);
        a.mov(eax, 1);
        a.@lock.xadd(__dword_ptr[(long)Var.Joined], eax);
        a.test(eax, RosterClosed);
        a.jnz(halt);
        a.lea(r15d, __[rax + 1]);
    }

    public void EmitAp(Assembler a, Label apUser)
    {
        var wait = a.CreateLabel();
        var spin = a.CreateLabel();
        a.Here(ref apUser);
        a.Here(ref wait);
        a.pause();
        a.cmp(__qword_ptr[(long)Var.Start], 0);
        a.je(wait);
        a.mov(rax, r15);
        a.shl(rax, 6);
        a.mov(__qword_ptr[rax + (int)GuestAbi.VcpuBlockGpa(0) + Vc.VcpuIndex], rsi);
        a.call(_sweep.Worker);
        a.@lock.inc(__qword_ptr[(long)Var.DoneCount]);
        a.Here(ref spin);   // HLT would #GP at CPL3; the BSP ends the VM soon
        a.pause();
        a.jmp(spin);
    }

    public void EmitBsp(Assembler a, Label bspUser)
    {
        var infoOk = a.CreateLabel();
        var noCmdline = a.CreateLabel();
        var rateMax = a.CreateLabel();
        var rateDone = a.CreateLabel();
        var patSeq = a.CreateLabel();
        var patDone = a.CreateLabel();
        var checkIn = a.CreateLabel();
        var close = a.CreateLabel();
        var cas = a.CreateLabel();
        var allIn = a.CreateLabel();
        var noPace = a.CreateLabel();
        var paceOk = a.CreateLabel();
        var reportsOn = a.CreateLabel();
        var reportsSet = a.CreateLabel();
        var waitAll = a.CreateLabel();
        var waitPause = a.CreateLabel();
        var finish = a.CreateLabel();

        a.Here(ref bspUser);
        a.xor(r15d, r15d);
        a.mov(rax, GuestAbi.StatusMagic);
        a.mov(__qword_ptr[(long)S(St.Magic)], rax);
        a.mov(__qword_ptr[(long)S(St.Version)], (int)GuestAbi.StatusVersion);
        a.mov(__qword_ptr[(long)Var.Pages], (int)(GuestAbi.DefaultMb * 256));
        a.mov(__qword_ptr[(long)Var.BufferBase], (int)GuestAbi.BufferGpa);
        a.mov(__qword_ptr[(long)Var.CpusRequested], (int)GuestAbi.DefaultCpus);
        a.mov(__qword_ptr[(long)Var.Sweeps], (int)GuestAbi.DefaultSweeps);
        a.mov(__qword_ptr[(long)Var.TscKhz], (int)GuestAbi.DefaultTscKhz);
        a.mov(__qword_ptr[(long)Var.ReportMs], (int)GuestAbi.DefaultReportMs);

        a.mov(rbx, __qword_ptr[(long)Var.StartInfo]);
        a.cmp(__dword_ptr[rbx], GuestAbi.HvmStartInfoMagic);
        a.je(infoOk);
        _rt.Line(a, "writer: error: bad hvm_start_info magic");
        _rt.ExitWith(a, GuestAbi.ExitBadArguments);
        a.Here(ref infoOk);
        a.mov(rsi, __qword_ptr[rbx + 24]);   // cmdline_paddr
        a.test(rsi, rsi);
        a.jz(noCmdline);
        a.call(_cmdline.Parse);
        a.Here(ref noCmdline);
        a.call(_checkMemmap);

        // Publish the configuration.
        Copy(a, Var.CpusRequested, St.CpusRequested);
        a.mov(rax, __qword_ptr[(long)Var.BufferBase]);
        a.mov(__qword_ptr[(long)S(St.BufferGpa)], rax);
        Copy(a, Var.Pages, St.BufferPages);
        Copy(a, Var.Sweeps, St.SweepsTarget);
        Copy(a, Var.Rate, St.RateTarget);
        Copy(a, Var.Pattern, St.Pattern);
        Copy(a, Var.TscKhz, St.TscKhz);

        _rt.LineBegin(a);
        _rt.Print(a, "writer: start pages=");
        _rt.PrintDec(a, Var.Pages);
        _rt.Print(a, " cpus=");
        _rt.PrintDec(a, Var.CpusRequested);
        _rt.Print(a, " rate=");
        a.cmp(__qword_ptr[(long)Var.Rate], 0);
        a.je(rateMax);
        _rt.PrintDec(a, Var.Rate);
        a.jmp(rateDone);
        a.Here(ref rateMax);
        _rt.Print(a, "max");
        a.Here(ref rateDone);
        _rt.Print(a, " pattern=");
        a.cmp(__qword_ptr[(long)Var.Pattern], 0);
        a.je(patSeq);
        _rt.Print(a, "rand");
        a.jmp(patDone);
        a.Here(ref patSeq);
        _rt.Print(a, "seq");
        a.Here(ref patDone);
        _rt.Print(a, " sweeps=");
        _rt.PrintDec(a, Var.Sweeps);
        _rt.LineEnd(a);

        // Release the APs (parameters are in memory before the flag: x86 keeps store order) and give them ~1 s.
        a.mov(__qword_ptr[(long)Var.Release], 1);
        a.mov(r12, __qword_ptr[(long)Var.TscKhz]);
        a.imul(r12, r12, (int)GuestAbi.ApCheckInTimeoutMs);
        Rdtsc(a);
        a.add(r12, rax);
        a.Here(ref checkIn);
        a.mov(eax, __dword_ptr[(long)Var.Joined]);
        a.inc(rax);
        a.cmp(rax, __qword_ptr[(long)Var.CpusRequested]);
        a.jae(close);
        a.pause();
        Rdtsc(a);
        a.cmp(rax, r12);
        a.jb(checkIn);
        // Close the roster atomically: an AP whose xadd sees bit 31 halts; the count we swap out is final.
        a.Here(ref close);
        a.mov(eax, __dword_ptr[(long)Var.Joined]);
        a.Here(ref cas);
        a.mov(edx, eax);
        a.or(edx, RosterClosed);
        a.@lock.cmpxchg(__dword_ptr[(long)Var.Joined], edx);
        a.jne(cas);
        a.inc(rax);
        a.mov(__qword_ptr[(long)Var.CpusRunning], rax);
        a.mov(__qword_ptr[(long)S(St.CpusRunning)], rax);
        a.cmp(rax, __qword_ptr[(long)Var.CpusRequested]);
        a.jae(allIn);
        _rt.LineBegin(a);
        _rt.Print(a, "writer: note: only ");
        _rt.PrintDec(a, rax);
        _rt.Print(a, " of ");
        _rt.PrintDec(a, Var.CpusRequested);
        _rt.Print(a, " vCPUs checked in; continuing with ");
        _rt.PrintDec(a, rax);
        _rt.LineEnd(a);
        a.Here(ref allIn);

        // Pacing: cycles per page per vCPU = tsc_hz * running / rate (at least 1).
        a.mov(rcx, __qword_ptr[(long)Var.Rate]);
        a.test(rcx, rcx);
        a.jz(noPace);
        a.mov(rax, __qword_ptr[(long)Var.TscKhz]);
        a.imul(rax, rax, 1000);
        a.mul(__qword_ptr[(long)Var.CpusRunning]);
        a.div(rcx);
        a.test(rax, rax);
        a.jnz(paceOk);
        a.inc(eax);
        a.Here(ref paceOk);
        a.mov(__qword_ptr[(long)Var.CyclesPerPage], rax);
        a.Here(ref noPace);
        a.mov(rax, __qword_ptr[(long)Var.TscKhz]);
        a.imul(rax, rax, (int)GuestAbi.MaxBacklogMs);
        a.mov(__qword_ptr[(long)Var.BacklogCycles], rax);
        a.mov(rax, __qword_ptr[(long)Var.TscKhz]);
        a.mul(__qword_ptr[(long)Var.ReportMs]);
        a.mov(__qword_ptr[(long)Var.ReportCycles], rax);
        Rdtsc(a);
        a.mov(__qword_ptr[(long)Var.LastReportTsc], rax);
        a.cmp(__qword_ptr[(long)Var.ReportMs], 0);
        a.jne(reportsOn);
        a.mov(rax, -1L);
        a.jmp(reportsSet);
        a.Here(ref reportsOn);
        a.add(rax, __qword_ptr[(long)Var.ReportCycles]);
        a.Here(ref reportsSet);
        a.mov(__qword_ptr[(long)Var.NextReport], rax);

        a.mov(__qword_ptr[(long)S(St.State)], (int)GuestAbi.StateRunning);
        a.mov(__qword_ptr[(long)Var.Start], 1);
        a.call(_sweep.Worker);

        a.Here(ref waitAll);
        a.mov(rax, __qword_ptr[(long)Var.DoneCount]);
        a.inc(rax);
        a.cmp(rax, __qword_ptr[(long)Var.CpusRunning]);
        a.jae(finish);
        Rdtsc(a);
        a.cmp(rax, __qword_ptr[(long)Var.NextReport]);
        a.jb(waitPause);
        a.call(_report.Report);
        a.Here(ref waitPause);
        a.pause();
        a.jmp(waitAll);

        a.Here(ref finish);
        a.call(_report.SumTotals);
        a.mov(r12, rax);
        a.mov(r13, __qword_ptr[(long)S(St.TotalFailures)]);
        _rt.LineBegin(a);
        _rt.Print(a, "writer: done sweeps=");
        _rt.PrintDec(a, Var.Sweeps);
        _rt.Print(a, " pages=");
        _rt.PrintDec(a, r12);
        _rt.Print(a, " failures=");
        _rt.PrintDec(a, r13);
        _rt.LineEnd(a);
        a.xor(edi, edi);
        a.test(r13, r13);
        a.setnz(dil);   // 0 = success, 1 = failures
        a.jmp(_rt.Exit);

        EmitCheckMemmap(a);
    }

    /// <summary>check_memmap (RBX = hvm_start_info): every byte of [base, +pages*4096) must lie in type-1 (RAM)
    /// entries of the PVH memmap (adjacent entries may cover it together) and below the identity-mapped 16 GiB;
    /// otherwise print and exit 3.</summary>
    private void EmitCheckMemmap(Assembler a)
    {
        var noMap = a.CreateLabel();
        var outer = a.CreateLabel();
        var inner = a.CreateLabel();
        var nextEntry = a.CreateLabel();
        var fail = a.CreateLabel();
        var ok = a.CreateLabel();
        a.Here(ref _checkMemmap);
        a.cmp(__dword_ptr[rbx + 4], 1);          // version >= 1 has the memmap fields
        a.jb(noMap);
        a.mov(r8, __qword_ptr[rbx + 40]);        // memmap_paddr
        a.test(r8, r8);
        a.jz(noMap);
        a.mov(r9d, __dword_ptr[rbx + 48]);       // memmap_entries
        a.test(r9d, r9d);
        a.jz(noMap);
        a.mov(r10, __qword_ptr[(long)Var.BufferBase]);     // cursor
        a.mov(r11, __qword_ptr[(long)Var.Pages]);
        a.shl(r11, 12);
        a.add(r11, r10);                          // end (base <= 16 GiB and pages <= MaxBufferPages: no overflow)
        a.mov(rax, (long)GuestAbi.IdentityMappedBytes);
        a.cmp(r11, rax);
        a.ja(fail);                               // beyond the page tables: the sweep would fault
        a.Here(ref outer);
        a.cmp(r10, r11);
        a.jae(ok);
        a.xor(ecx, ecx);
        a.Here(ref inner);
        a.cmp(ecx, r9d);
        a.jae(fail);
        a.imul(eax, ecx, 24);                     // {u64 addr, u64 size, u32 type, u32 reserved}
        a.add(rax, r8);
        a.cmp(__dword_ptr[rax + 16], GuestAbi.E820Ram);
        a.jne(nextEntry);
        a.mov(rdx, __qword_ptr[rax]);
        a.cmp(r10, rdx);
        a.jb(nextEntry);
        a.add(rdx, __qword_ptr[rax + 8]);
        a.cmp(r10, rdx);
        a.jae(nextEntry);
        a.mov(r10, rdx);                          // covered up to the end of this entry
        a.jmp(outer);
        a.Here(ref nextEntry);
        a.inc(ecx);
        a.jmp(inner);
        a.Here(ref ok);
        a.ret();

        a.Here(ref noMap);
        _rt.Line(a, "writer: error: hvm_start_info has no memory map");
        _rt.ExitWith(a, GuestAbi.ExitBadArguments);
        a.Here(ref fail);
        _rt.LineBegin(a);
        _rt.Print(a, "writer: error: buffer ");
        a.mov(rax, __qword_ptr[(long)Var.BufferBase]);
        _rt.PrintHex(a, rax);
        _rt.Print(a, "..");
        _rt.PrintHex(a, r11);
        _rt.Print(a, " is not all RAM (first gap at ");
        _rt.PrintHex(a, r10);
        _rt.Print(a, ")");
        _rt.LineEnd(a);
        _rt.ExitWith(a, GuestAbi.ExitBadArguments);
    }

    private static void Copy(Assembler a, ulong variable, int statusOffset)
    {
        a.mov(rax, __qword_ptr[(long)variable]);
        a.mov(__qword_ptr[(long)S(statusOffset)], rax);
    }

    private static void Rdtsc(Assembler a)
    {
        a.rdtsc();
        a.shl(rdx, 32);
        a.or(rax, rdx);
    }
}
