using Iced.Intel;
using MiniVmm.Firmware.Boot;
using static Iced.Intel.AssemblerRegisters;

namespace MiniVmm.Firmware.Runtime;

/// <summary>
/// Small 64-bit helper routines for guest code (CPL3, ports opened by the TSS I/O bitmap): serial output, numbers,
/// a line lock so vCPUs don't interleave lines, and exit through the debug-exit port. Every routine preserves every
/// register (the writer's hot loop keeps its state in registers and calls these only on rare paths). The C# helper
/// methods (Print, PrintDec, ...) also preserve registers, so they can be dropped anywhere.
/// </summary>
public sealed class Runtime64
{
    private readonly ulong _lineLock;
    private readonly ulong? _statusPage;
    private Label _putc, _puts, _putn, _putDec, _putHex, _lineBegin, _lineEnd, _exit;

    /// <param name="a">The assembler the routines and their callers share.</param>
    /// <param name="lineLock">Address of a u32 spin lock (0 = free) inside the image.</param>
    /// <param name="statusPage">When given, Exit records exit_status and state=done in the status page first.</param>
    public Runtime64(Assembler a, ulong lineLock, ulong? statusPage)
    {
        _lineLock = lineLock;
        _statusPage = statusPage;
        Strings = new StringPool();
        _putc = a.CreateLabel("putc");
        _puts = a.CreateLabel("puts");
        _putn = a.CreateLabel("putn");
        _putDec = a.CreateLabel("put_dec");
        _putHex = a.CreateLabel("put_hex");
        _lineBegin = a.CreateLabel("line_begin");
        _lineEnd = a.CreateLabel("line_end");
        _exit = a.CreateLabel("exit");
    }

    public StringPool Strings { get; }
    /// <summary>Byte in DIL.</summary>
    public Label Putc => _putc;
    /// <summary>RSI = NUL-terminated string.</summary>
    public Label Puts => _puts;
    /// <summary>RSI = bytes, RCX = count.</summary>
    public Label PutN => _putn;
    /// <summary>EDI = status; never returns.</summary>
    public Label Exit => _exit;

    // ---- Macros for callers ---------------------------------------------------------------------------------------
    public void Print(Assembler a, string s)
    {
        a.push(rsi);
        a.lea(rsi, __[Strings.Get(a, s)]);
        a.call(_puts);
        a.pop(rsi);
    }

    public void PrintDec(Assembler a, AssemblerRegister64 r) => PrintNumber(a, r, _putDec);
    public void PrintHex(Assembler a, AssemblerRegister64 r) => PrintNumber(a, r, _putHex);

    /// <summary>Prints the u64 at an absolute address (not RSP-relative: the push would move it).</summary>
    public void PrintDec(Assembler a, ulong address)
    {
        a.push(rdi);
        a.mov(rdi, __qword_ptr[(long)address]);
        a.call(_putDec);
        a.pop(rdi);
    }

    private static void PrintNumber(Assembler a, AssemblerRegister64 r, Label routine)
    {
        a.push(rdi);
        if (r != rdi)
            a.mov(rdi, r);
        a.call(routine);
        a.pop(rdi);
    }

    public void LineBegin(Assembler a) => a.call(_lineBegin);
    public void LineEnd(Assembler a) => a.call(_lineEnd);

    /// <summary>One whole line under the line lock.</summary>
    public void Line(Assembler a, string s)
    {
        LineBegin(a);
        Print(a, s);
        LineEnd(a);
    }

    public void ExitWith(Assembler a, uint status)
    {
        a.mov(edi, status);
        a.jmp(_exit);
    }

    // ---- Routine bodies -------------------------------------------------------------------------------------------
    public void Emit(Assembler a)
    {
        // putc: poll LSR.THRE a bounded number of times (a VMM without a real LSR must not hang us), then write THR.
        a.Here(ref _putc);
        a.push(rax); a.push(rcx); a.push(rdx);
        SerialWait.EmitWaitForTransmitter(a);
        a.mov(eax, edi);
        a.@out(dx, al);
        a.pop(rdx); a.pop(rcx); a.pop(rax);
        a.ret();

        var sLoop = a.CreateLabel();
        var sDone = a.CreateLabel();
        a.Here(ref _puts);
        a.push(rsi); a.push(rdi);
        a.Here(ref sLoop);
        a.movzx(edi, __byte_ptr[rsi]);
        a.test(edi, edi);
        a.jz(sDone);
        a.call(_putc);
        a.inc(rsi);
        a.jmp(sLoop);
        a.Here(ref sDone);
        a.pop(rdi); a.pop(rsi);
        a.ret();

        var nLoop = a.CreateLabel();
        var nDone = a.CreateLabel();
        a.Here(ref _putn);
        a.push(rsi); a.push(rdi); a.push(rcx);
        a.Here(ref nLoop);
        a.test(rcx, rcx);
        a.jz(nDone);
        a.movzx(edi, __byte_ptr[rsi]);
        a.call(_putc);
        a.inc(rsi);
        a.dec(rcx);
        a.jmp(nLoop);
        a.Here(ref nDone);
        a.pop(rcx); a.pop(rdi); a.pop(rsi);
        a.ret();

        // put_dec / put_hex: digits are produced backwards into a 32-byte buffer on the stack, then printed.
        var dLoop = a.CreateLabel();
        a.Here(ref _putDec);
        a.push(rax); a.push(rcx); a.push(rdx); a.push(rsi);
        a.sub(rsp, 32);
        a.lea(rsi, __[rsp + 31]);
        a.mov(__byte_ptr[rsi], 0);
        a.mov(rax, rdi);
        a.mov(ecx, 10);
        a.Here(ref dLoop);
        a.xor(edx, edx);
        a.div(rcx);
        a.add(edx, '0');
        a.dec(rsi);
        a.mov(__byte_ptr[rsi], dl);
        a.test(rax, rax);
        a.jnz(dLoop);
        a.call(_puts);
        a.add(rsp, 32);
        a.pop(rsi); a.pop(rdx); a.pop(rcx); a.pop(rax);
        a.ret();

        var hLoop = a.CreateLabel();
        var hDigit = a.CreateLabel();
        a.Here(ref _putHex);
        a.push(rax); a.push(rdx); a.push(rsi);
        a.sub(rsp, 32);
        a.lea(rsi, __[rsp + 31]);
        a.mov(__byte_ptr[rsi], 0);
        a.mov(rax, rdi);
        a.Here(ref hLoop);
        a.mov(edx, eax);
        a.and(edx, 15);
        a.cmp(edx, 10);
        a.jb(hDigit);
        a.add(edx, 'a' - 10 - '0');
        a.Here(ref hDigit);
        a.add(edx, '0');
        a.dec(rsi);
        a.mov(__byte_ptr[rsi], dl);
        a.shr(rax, 4);
        a.jnz(hLoop);
        a.dec(rsi);
        a.mov(__byte_ptr[rsi], (byte)'x');
        a.dec(rsi);
        a.mov(__byte_ptr[rsi], (byte)'0');
        a.call(_puts);
        a.add(rsp, 32);
        a.pop(rsi); a.pop(rdx); a.pop(rax);
        a.ret();

        // Line lock: xchg with memory is implicitly locked. Held only while printing one line.
        var spin = a.CreateLabel();
        var got = a.CreateLabel();
        a.Here(ref _lineBegin);
        a.push(rax);
        a.Here(ref spin);
        a.mov(eax, 1);
        a.xchg(__dword_ptr[(long)_lineLock], eax);
        a.test(eax, eax);
        a.jz(got);
        a.pause();
        a.jmp(spin);
        a.Here(ref got);
        a.pop(rax);
        a.ret();

        a.Here(ref _lineEnd);
        a.push(rdi);
        a.mov(edi, '\n');
        a.call(_putc);
        a.pop(rdi);
        a.mov(__dword_ptr[(long)_lineLock], 0);
        a.ret();

        // exit: record the outcome for the VMM, then OUT to debug-exit. If nothing stops the VM, spin here (HLT
        // would #GP at CPL3).
        var forever = a.CreateLabel();
        a.Here(ref _exit);
        if (_statusPage is { } sp)
        {
            a.mov(eax, edi);
            a.mov(__qword_ptr[(long)(sp + GuestAbi.Status.ExitStatus)], rax);
            a.mov(__qword_ptr[(long)(sp + GuestAbi.Status.State)], (int)GuestAbi.StateDone);
        }
        a.mov(edx, (uint)GuestAbi.DebugExitPort);
        a.mov(eax, edi);
        a.@out(dx, eax);
        a.Here(ref forever);
        a.pause();
        a.jmp(forever);
    }
}
