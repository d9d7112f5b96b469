using Iced.Intel;
using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Runtime;
using static Iced.Intel.AssemblerRegisters;
using V = MiniVmm.Firmware.Guests.Writer.WriterLayout.Var;

namespace MiniVmm.Firmware.Guests.Writer;

/// <summary>
/// The writer's command-line parser (CPL3, BSP only). Tokens are separated by bytes &lt;= ' '; a token is key=value;
/// tokens without '=' and unknown keys are ignored; a later key overrides an earlier one. A bad value prints
/// <c>writer: bad value in 'TOKEN'</c> and exits with status 3.
/// Registers while a token is handled: R13 = token start, R14 = token end, R15 = the '='.
/// </summary>
internal sealed class WriterCmdline
{
    private readonly Runtime64 _rt;
    private Label _parse, _keyEq, _parseU64, _bad;

    public WriterCmdline(Assembler a, Runtime64 rt)
    {
        _rt = rt;
        _parse = a.CreateLabel("parse_cmdline");
        _keyEq = a.CreateLabel("key_eq");
        _parseU64 = a.CreateLabel("parse_u64");
        _bad = a.CreateLabel("bad_value");
    }

    /// <summary>RSI = NUL-terminated command line. Preserves R12-R15.</summary>
    public Label Parse => _parse;

    public void Emit(Assembler a)
    {
        var next = a.CreateLabel();
        var tok = a.CreateLabel();
        var scan = a.CreateLabel();
        var tend = a.CreateLabel();
        var findEq = a.CreateLabel();
        var haveEq = a.CreateLabel();
        var skip = a.CreateLabel();
        var ws = a.CreateLabel();
        var done = a.CreateLabel();

        a.Here(ref _parse);
        a.push(r12); a.push(r13); a.push(r14); a.push(r15);
        a.mov(r12, rsi);
        a.Here(ref next);
        a.movzx(eax, __byte_ptr[r12]);
        a.test(eax, eax);
        a.jz(done);
        a.cmp(eax, ' ');
        a.jbe(ws);
        a.Here(ref tok);
        a.mov(r13, r12);
        a.mov(r14, r12);
        a.Here(ref scan);
        a.movzx(eax, __byte_ptr[r14]);
        a.cmp(eax, ' ');
        a.jbe(tend);
        a.inc(r14);
        a.jmp(scan);
        a.Here(ref tend);
        a.mov(r15, r13);
        a.Here(ref findEq);
        a.cmp(r15, r14);
        a.je(skip);
        a.cmp(__byte_ptr[r15], (byte)'=');
        a.je(haveEq);
        a.inc(r15);
        a.jmp(findEq);

        a.Here(ref haveEq);
        Key(a, "mb", skip, () => Number(a, V.Pages, 1, GuestAbi.MaxBufferPages / 256, shift: 8));
        Key(a, "pages", skip, () => Number(a, V.Pages, 1, GuestAbi.MaxBufferPages));
        // base=MB: where the buffer starts, in MiB (16 and up; e.g. base=4096 puts it above the 32-bit MMIO hole).
        Key(a, "base", skip, () => Number(a, V.BufferBase, GuestAbi.BufferGpa >> 20, GuestAbi.IdentityMappedBytes >> 20, shift: 20));
        Key(a, "rate", skip, () =>
        {
            var numeric = a.CreateLabel();
            ValueIs(a, "max", numeric);
            a.mov(__qword_ptr[(long)V.Rate], 0);
            a.jmp(skip);
            a.Here(ref numeric);
            Number(a, V.Rate, 1, ulong.MaxValue);
        });
        Key(a, "pattern", skip, () =>
        {
            var notSeq = a.CreateLabel();
            ValueIs(a, "seq", notSeq);
            a.mov(__qword_ptr[(long)V.Pattern], 0);
            a.jmp(skip);
            a.Here(ref notSeq);
            ValueIs(a, "rand", _bad);
            a.mov(__qword_ptr[(long)V.Pattern], 1);
        });
        Key(a, "cpus", skip, () => Number(a, V.CpusRequested, 1, (ulong)GuestAbi.MaxVcpus));
        Key(a, "sweeps", skip, () => Number(a, V.Sweeps, 0, ulong.MaxValue));
        Key(a, "tsc_khz", skip, () => Number(a, V.TscKhz, 1, 100_000_000));
        Key(a, "snapshot_after", skip, () => Number(a, V.SnapshotAfter, 0, ulong.MaxValue));
        Key(a, "report_ms", skip, () => Number(a, V.ReportMs, 0, 3_600_000));
        Key(a, "prefill", skip, () => Number(a, V.Prefill, 0, 1));
        // unknown key: fall through to skip

        a.Here(ref skip);
        a.mov(r12, r14);
        a.jmp(next);
        a.Here(ref ws);
        a.inc(r12);
        a.jmp(next);
        a.Here(ref done);
        a.pop(r15); a.pop(r14); a.pop(r13); a.pop(r12);
        a.ret();

        a.Here(ref _bad);
        _rt.LineBegin(a);
        _rt.Print(a, "writer: bad value in '");
        a.mov(rsi, r13);
        a.mov(rcx, r14);
        a.sub(rcx, r13);
        a.call(_rt.PutN);
        _rt.Print(a, "'");
        _rt.LineEnd(a);
        _rt.ExitWith(a, GuestAbi.ExitBadArguments);

        EmitKeyEq(a);
        EmitParseU64(a);
    }

    /// <summary>If the key [R13, R15) equals <paramref name="name"/>, run <paramref name="body"/> with RSI/RCX = the
    /// value, then continue with the next token.</summary>
    private void Key(Assembler a, string name, Label skip, Action body)
    {
        var other = a.CreateLabel();
        a.mov(rsi, r13);
        a.mov(rdx, r15);
        a.sub(rdx, r13);
        a.lea(rdi, __[_rt.Strings.Get(a, name)]);
        a.mov(ecx, name.Length);
        a.call(_keyEq);
        a.jne(other);
        LoadValue(a);
        body();
        a.jmp(skip);
        a.Here(ref other);
    }

    private static void LoadValue(Assembler a)
    {
        a.lea(rsi, __[r15 + 1]);
        a.mov(rcx, r14);
        a.sub(rcx, rsi);
    }

    /// <summary>Jumps to <paramref name="otherwise"/> unless the value is exactly <paramref name="word"/>; leaves the
    /// value in RSI/RCX either way.</summary>
    private void ValueIs(Assembler a, string word, Label otherwise)
    {
        a.mov(rdx, rcx);
        a.lea(rdi, __[_rt.Strings.Get(a, word)]);
        a.mov(ecx, word.Length);
        a.call(_keyEq);
        a.mov(rcx, rdx);   // key_eq preserved RSI and RDX; mov keeps its ZF
        a.jne(otherwise);
    }

    private void Number(Assembler a, ulong variable, ulong min, ulong max, int shift = 0)
    {
        a.call(_parseU64);
        a.jc(_bad);
        if (min > 0)
        {
            a.cmp(rax, (int)min);
            a.jb(_bad);
        }
        if (max != ulong.MaxValue)
        {
            a.mov(rcx, max);
            a.cmp(rax, rcx);
            a.ja(_bad);
        }
        if (shift > 0)
            a.shl(rax, (byte)shift);
        a.mov(__qword_ptr[(long)variable], rax);
    }

    /// <summary>key_eq: RSI/RDX = candidate bytes/length, RDI/RCX = expected bytes/length. ZF=1 when equal.
    /// Preserves every register. DF is 0 (RFLAGS=2 at the iretq).</summary>
    private void EmitKeyEq(Assembler a)
    {
        var ret = a.CreateLabel();
        a.Here(ref _keyEq);
        a.push(rsi); a.push(rdi); a.push(rcx);
        a.cmp(rdx, rcx);
        a.jne(ret);
        a.repe.cmpsb();   // rcx == 0 leaves ZF from the cmp above (set)
        a.Here(ref ret);
        a.pop(rcx); a.pop(rdi); a.pop(rsi);
        a.ret();
    }

    /// <summary>parse_u64: RSI/RCX = decimal digits → RAX; CF=1 when empty, not a digit, or over 2^64-1.</summary>
    private void EmitParseU64(Assembler a)
    {
        var loop = a.CreateLabel();
        var err = a.CreateLabel();
        var ok = a.CreateLabel();
        a.Here(ref _parseU64);
        a.push(rbx); a.push(rcx); a.push(rdx); a.push(rsi);
        a.test(rcx, rcx);
        a.jz(err);
        a.xor(eax, eax);
        a.Here(ref loop);
        a.movzx(ebx, __byte_ptr[rsi]);
        a.sub(ebx, '0');
        a.cmp(ebx, 9);
        a.ja(err);
        a.mov(edx, 10);
        a.mul(rdx);       // CF=OF=1 when the product needs more than 64 bits
        a.jc(err);
        a.add(rax, rbx);
        a.jc(err);
        a.inc(rsi);
        a.dec(rcx);
        a.jnz(loop);
        a.clc();
        a.jmp(ok);
        a.Here(ref err);
        a.stc();
        a.Here(ref ok);
        a.pop(rsi); a.pop(rdx); a.pop(rcx); a.pop(rbx);
        a.ret();
    }
}
