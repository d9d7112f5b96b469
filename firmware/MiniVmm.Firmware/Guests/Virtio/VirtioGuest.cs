using Iced.Intel;
using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Elf;
using MiniVmm.Firmware.Runtime;
using static Iced.Intel.AssemblerRegisters;
using static MiniVmm.Firmware.Guests.Virtio.VirtioGuestLayout;

namespace MiniVmm.Firmware.Guests.Virtio;

/// <summary>
/// vblk.elf: a minimal virtio-mmio (version 2) driver at CPL3 that checks a virtio-blk disk and a virtio-rng device.
/// It finds the devices from <c>virtio_mmio.device=SIZE@0xADDR:IRQ</c> on its command line (MiniVmm and QEMU microvm
/// both add them), brings each up (VERSION_1 only, one queue of 8, polled: no interrupts), then on the disk:
/// reads the first <c>sectors=</c> sectors (default 64) and checks they hold the previous generation's stamp
/// (generation 0 = zeros; the stamp of word i of sector s in generation g is <c>g&lt;&lt;32 | s&lt;&lt;8 | i</c>),
/// writes generation g+1, flushes, reads it back and checks it. A read-only disk must refuse a write instead.
/// <c>reads=N</c> times N extra 4 KiB reads. The rng must fill a 64-byte buffer. Exit 0 when all holds, 1 on a
/// failed check, 3 when no disk is found or a device does not come up.
/// <para>
/// <c>writer=N</c> is the continuous self-checking disk writer instead (<see cref="EmitWriter"/>): N random-block
/// writes, each stamped with a new generation and verified against the generation table it keeps in RAM
/// (<c>blocks=</c>, <c>flush=</c>, <c>snapat=</c>, <c>fresh=1</c>, <c>report=</c>).
/// </para>
/// </summary>
public static class VirtioGuest
{
    public const uint DeviceIdBlock = 2, DeviceIdRng = 4;
    public const int DefaultSectors = 64;

    public static byte[] Build()
    {
        var layout = VirtioGuestLayout.Boot;
        var block64 = new CodeBlock(64, CodeBase);
        var a = block64.Asm;
        var rt = new Runtime64(a, Var.LineLock, null);
        var main = a.CreateLabel("main");
        var entry64 = BootStub.EmitLongModeEntry(a, layout, main, null, null);
        new Emitter(a, rt).EmitAll(main);
        rt.Emit(a);
        rt.Strings.Emit(a);
        var code64 = block64.Assemble();

        var block32 = new CodeBlock(32, (code64.End + 15) & ~15UL);
        var (bsp, _) = BootStub.EmitProtectedModeEntries(block32.Asm, layout, code64.LabelAddress(entry64), Var.StartInfo);
        var code32 = block32.Assemble();
        if (code32.End > CodeLimit) throw new InvalidOperationException($"vblk code ends at 0x{code32.End:x}, past 0x{CodeLimit:x}");

        var image = new byte[code32.End - GuestAbi.ImageBase];
        Place(image, layout.Gdt, BootTables.BuildGdt(layout));
        Place(image, layout.Gdtr, BootTables.BuildGdtr(layout));
        Place(image, layout.TssBase, BootTables.BuildTssArea(layout));
        Place(image, layout.Pml4, BootTables.BuildPageTables(layout));
        Place(image, code64.Address, code64.Bytes);
        Place(image, code32.Address, code32.Bytes);
        ulong entry = code32.LabelAddress(bsp);
        return Elf64Writer.Write(entry, [new ElfSegment(GuestAbi.ImageBase, image, ImageEnd - GuestAbi.ImageBase)],
            [ElfNote.U64(GuestAbi.XenNoteName, GuestAbi.XenElfNotePhys32Entry, entry)]);
    }

    private static void Place(byte[] image, ulong address, byte[] data)
    {
        int offset = checked((int)(address - GuestAbi.ImageBase));
        if (image.AsSpan(offset, data.Length).ContainsAnyExcept((byte)0)) throw new InvalidOperationException($"overlap at 0x{address:x}");
        data.CopyTo(image, offset);
    }

    /// <summary>The guest's code. Conventions: RBX = device window, R12 = queue area while a device is in use; R13/R14
    /// are loop counters no routine touches; routines clobber RAX, RCX, RDX, RSI, RDI, R8-R11.</summary>
    private sealed class Emitter(Assembler a, Runtime64 rt)
    {
        // virtio-mmio registers (virtio 1.2 §4.2.2)
        private const int Magic = 0x00, Version = 0x04, DeviceId = 0x08, DeviceFeatures = 0x10, DeviceFeaturesSel = 0x14;
        private const int DriverFeatures = 0x20, DriverFeaturesSel = 0x24, QueueSel = 0x30, QueueNumMax = 0x34, QueueNum = 0x38;
        private const int QueueReady = 0x44, QueueNotify = 0x50, Status = 0x70, QueueDesc = 0x80, QueueDriver = 0x90, QueueDevice = 0xa0;
        private const int Config = 0x100;
        private const uint TypeIn = 0, TypeOut = 1, TypeFlush = 4, TypeGetId = 8;

        private Label _match = a.CreateLabel("match"), _dec = a.CreateLabel("parse_dec"), _hex = a.CreateLabel("parse_hex");
        private Label _parse = a.CreateLabel("parse_cmdline"), _probe = a.CreateLabel("probe"), _init = a.CreateLabel("dev_init");
        private Label _submit = a.CreateLabel("submit"), _rw = a.CreateLabel("blk_rw"), _fill = a.CreateLabel("fill");
        private Label _verify = a.CreateLabel("verify"), _blk = a.CreateLabel("blk_test"), _rng = a.CreateLabel("rng_test");
        private Label _fail = a.CreateLabel("fail");
        private Label _writer = a.CreateLabel("writer");

        private void Rdtsc()
        {
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
        }

        public void EmitAll(Label main)
        {
            EmitMain(main);
            EmitCmdline();
            EmitProbe();
            EmitInit();
            EmitSubmit();
            EmitBlockRw();
            EmitPattern();
            EmitBlockTest();
            EmitRngTest();
            EmitWriter();
            // fail: one more failure (RSI = message), printed as a line.
            a.Here(ref _fail);
            a.inc(__qword_ptr[(long)Var.Failures]);
            rt.LineBegin(a);
            a.call(rt.Puts);
            rt.LineEnd(a);
            a.ret();
        }

        private void Fail(string message)
        {
            a.lea(rsi, __[rt.Strings.Get(a, message)]);
            a.call(_fail);
        }

        private void EmitMain(Label main)
        {
            var haveCmdline = a.CreateLabel();
            var haveBlk = a.CreateLabel();
            var ok = a.CreateLabel();
            a.Here(ref main);
            a.mov(__qword_ptr[(long)Var.Sectors], DefaultSectors);
            a.mov(__qword_ptr[(long)Var.FlushEvery], 64);
            a.mov(__qword_ptr[(long)Var.Report], 1024);
            a.mov(__qword_ptr[(long)Var.Rng], 0x2545F491);
            a.mov(__qword_ptr[(long)Var.TscKhz], (int)GuestAbi.DefaultTscKhz);
            a.mov(rax, __qword_ptr[(long)Var.StartInfo]);
            a.cmp(__dword_ptr[rax], GuestAbi.HvmStartInfoMagic);
            a.jne(haveCmdline); // no start info: nothing to find
            a.mov(rsi, __qword_ptr[rax + 24]);
            a.test(rsi, rsi);
            a.jz(haveCmdline);
            a.call(_parse);
            a.Here(ref haveCmdline);
            a.cmp(__qword_ptr[(long)Var.BlkBase], 0);
            a.jne(haveBlk);
            rt.Line(a, "vblk: no virtio-blk device on the command line (virtio_mmio.device=...)");
            rt.ExitWith(a, GuestAbi.ExitBadArguments);
            a.Here(ref haveBlk);
            var testMode = a.CreateLabel(); var tested = a.CreateLabel();
            a.cmp(__qword_ptr[(long)Var.WriterLeft], 0);
            a.je(testMode);
            a.call(_writer);
            a.jmp(tested);
            a.Here(ref testMode);
            a.call(_blk);
            a.call(_rng);
            a.Here(ref tested);
            rt.LineBegin(a);
            rt.Print(a, "vblk: done failures=");
            rt.PrintDec(a, Var.Failures);
            rt.LineEnd(a);
            a.cmp(__qword_ptr[(long)Var.Failures], 0);
            a.je(ok);
            rt.ExitWith(a, GuestAbi.ExitFailures);
            a.Here(ref ok);
            rt.ExitWith(a, GuestAbi.ExitSuccess);
        }

        /// <summary>parse_cmdline: RSI = NUL-terminated command line. Keys are matched at token starts only.</summary>
        private void EmitCmdline()
        {
            var loop = a.CreateLabel(); var next = a.CreateLabel(); var done = a.CreateLabel(); var notDev = a.CreateLabel();
            var toAt = a.CreateLabel(); var notReads = a.CreateLabel(); var notSectors = a.CreateLabel(); var notTsc = a.CreateLabel();
            var tokenStart = a.CreateLabel();
            a.Here(ref _parse);
            a.mov(r10d, 1); // at a token start
            a.Here(ref loop);
            a.movzx(eax, __byte_ptr[rsi]);
            a.test(eax, eax);
            a.jz(done);
            a.test(r10d, r10d);
            a.jz(next);
            MatchKey("virtio_mmio.device=", notDev);
            a.Here(ref toAt); // skip SIZE up to '@'
            a.movzx(eax, __byte_ptr[rsi]);
            a.test(eax, eax);
            a.jz(done);
            a.inc(rsi);
            a.cmp(eax, '@');
            a.jne(toAt);
            a.cmp(__word_ptr[rsi], 'x' << 8 | '0');
            a.jne(loop);
            a.add(rsi, 2);
            a.call(_hex);
            a.mov(rdi, rax);
            a.call(_probe);
            a.xor(r10d, r10d);
            a.jmp(loop);
            a.Here(ref notDev);
            MatchKey("reads=", notReads);
            a.call(_dec);
            a.mov(__qword_ptr[(long)Var.Reads], rax);
            a.xor(r10d, r10d);
            a.jmp(loop);
            a.Here(ref notReads);
            MatchKey("sectors=", notSectors);
            a.call(_dec);
            a.mov(__qword_ptr[(long)Var.Sectors], rax);
            a.xor(r10d, r10d);
            a.jmp(loop);
            a.Here(ref notSectors);
            var notSnap = a.CreateLabel();
            MatchKey("snapshot=", notSnap);
            a.call(_dec);
            a.mov(__qword_ptr[(long)Var.Snapshot], rax);
            a.xor(r10d, r10d);
            a.jmp(loop);
            a.Here(ref notSnap);
            foreach (var (key, variable) in new[] { ("writer=", Var.WriterLeft), ("blocks=", Var.Blocks), ("snapat=", Var.SnapAt), ("flush=", Var.FlushEvery), ("fresh=", Var.Fresh), ("report=", Var.Report) })
            {
                var notKey = a.CreateLabel();
                MatchKey(key, notKey);
                a.call(_dec);
                a.mov(__qword_ptr[(long)variable], rax);
                a.xor(r10d, r10d);
                a.jmp(loop);
                a.Here(ref notKey);
            }
            MatchKey("tsc_khz=", notTsc);
            a.call(_dec);
            a.test(rax, rax);
            a.jz(loop);
            a.mov(__qword_ptr[(long)Var.TscKhz], rax);
            a.xor(r10d, r10d);
            a.jmp(loop);
            a.Here(ref notTsc);
            a.Here(ref next);
            a.movzx(eax, __byte_ptr[rsi]);
            a.inc(rsi);
            a.xor(r10d, r10d);
            a.cmp(eax, ' ');
            a.jne(tokenStart);
            a.mov(r10d, 1);
            a.Here(ref tokenStart);
            a.jmp(loop);
            a.Here(ref done);
            a.ret();

            // match: RSI = cursor, RDI = literal; RAX = 1 and RSI past the literal on a match, else RAX = 0.
            var mLoop = a.CreateLabel(); var mYes = a.CreateLabel(); var mNo = a.CreateLabel();
            a.Here(ref _match);
            a.mov(rcx, rsi);
            a.Here(ref mLoop);
            a.movzx(eax, __byte_ptr[rdi]);
            a.test(eax, eax);
            a.jz(mYes);
            a.cmp(al, __byte_ptr[rcx]);
            a.jne(mNo);
            a.inc(rdi);
            a.inc(rcx);
            a.jmp(mLoop);
            a.Here(ref mYes);
            a.mov(rsi, rcx);
            a.mov(eax, 1);
            a.ret();
            a.Here(ref mNo);
            a.xor(eax, eax);
            a.ret();

            // parse_dec / parse_hex: RSI = digits → RAX, RSI past them.
            var dLoop = a.CreateLabel(); var dEnd = a.CreateLabel();
            a.Here(ref _dec);
            a.xor(eax, eax);
            a.Here(ref dLoop);
            a.movzx(ecx, __byte_ptr[rsi]);
            a.sub(ecx, '0');
            a.cmp(ecx, 9);
            a.ja(dEnd);
            a.imul(rax, rax, 10);
            a.add(rax, rcx);
            a.inc(rsi);
            a.jmp(dLoop);
            a.Here(ref dEnd);
            a.ret();

            var hLoop = a.CreateLabel(); var hEnd = a.CreateLabel(); var hAlpha = a.CreateLabel(); var hAdd = a.CreateLabel();
            a.Here(ref _hex);
            a.xor(eax, eax);
            a.Here(ref hLoop);
            a.movzx(ecx, __byte_ptr[rsi]);
            a.or(ecx, 0x20);          // lower-case letters; digits are unchanged
            a.sub(ecx, '0');
            a.cmp(ecx, 9);
            a.jbe(hAdd);
            a.sub(ecx, 'a' - '0');
            a.cmp(ecx, 5);
            a.ja(hEnd);
            a.add(ecx, 10);
            a.Here(ref hAdd);
            a.shl(rax, 4);
            a.add(rax, rcx);
            a.inc(rsi);
            a.jmp(hLoop);
            a.Here(ref hEnd);
            a.ret();
        }

        private void MatchKey(string key, Label notIt)
        {
            a.lea(rdi, __[rt.Strings.Get(a, key)]);
            a.call(_match);
            a.test(eax, eax);
            a.jz(notIt);
        }

        /// <summary>probe: RDI = a virtio-mmio window; remembers the first disk and the first rng.</summary>
        private void EmitProbe()
        {
            var done = a.CreateLabel(); var notBlk = a.CreateLabel();
            a.Here(ref _probe);
            a.cmp(__dword_ptr[rdi + Magic], 0x74726976);
            a.jne(done);
            a.cmp(__dword_ptr[rdi + Version], 2);
            a.jne(done);
            a.mov(eax, __dword_ptr[rdi + DeviceId]);
            a.cmp(eax, DeviceIdBlock);
            a.jne(notBlk);
            a.cmp(__qword_ptr[(long)Var.BlkBase], 0);
            a.jne(done);
            a.mov(__qword_ptr[(long)Var.BlkBase], rdi);
            a.ret();
            a.Here(ref notBlk);
            a.cmp(eax, DeviceIdRng);
            a.jne(done);
            a.cmp(__qword_ptr[(long)Var.RngBase], 0);
            a.jne(done);
            a.mov(__qword_ptr[(long)Var.RngBase], rdi);
            a.Here(ref done);
            a.ret();
        }

        /// <summary>dev_init: RBX = window, R12 = queue area. The probe sequence of virtio 1.2 §3.1.1 with VERSION_1 as
        /// the only feature; RAX = 0 when the device is live.</summary>
        private void EmitInit()
        {
            var fail = a.CreateLabel();
            a.Here(ref _init);
            a.mov(__qword_ptr[(long)Var.AvailIdx], 0);
            a.mov(__dword_ptr[rbx + Status], 0);
            a.mov(__dword_ptr[rbx + Status], 1);
            a.mov(__dword_ptr[rbx + Status], 3);
            a.mov(__dword_ptr[rbx + DeviceFeaturesSel], 0);
            a.mov(eax, __dword_ptr[rbx + DeviceFeatures]);
            a.mov(__qword_ptr[(long)Var.Features], rax);
            a.mov(__dword_ptr[rbx + DriverFeaturesSel], 1);
            a.mov(__dword_ptr[rbx + DriverFeatures], 1);   // VERSION_1 (bit 32)
            a.mov(__dword_ptr[rbx + DriverFeaturesSel], 0);
            a.mov(__dword_ptr[rbx + DriverFeatures], 0);
            a.mov(__dword_ptr[rbx + Status], 0xb);
            a.mov(eax, __dword_ptr[rbx + Status]);
            a.test(eax, 8);
            a.jz(fail);
            a.mov(__dword_ptr[rbx + QueueSel], 0);
            a.mov(eax, __dword_ptr[rbx + QueueNumMax]);
            a.cmp(eax, QueueSize);
            a.jb(fail);
            a.mov(__dword_ptr[rbx + QueueNum], QueueSize);
            a.mov(__dword_ptr[rbx + QueueDesc], r12d);
            a.mov(__dword_ptr[rbx + QueueDesc + 4], 0);
            a.lea(eax, __[r12 + Avail]);
            a.mov(__dword_ptr[rbx + QueueDriver], eax);
            a.mov(__dword_ptr[rbx + QueueDriver + 4], 0);
            a.lea(eax, __[r12 + Used]);
            a.mov(__dword_ptr[rbx + QueueDevice], eax);
            a.mov(__dword_ptr[rbx + QueueDevice + 4], 0);
            a.mov(__dword_ptr[rbx + QueueReady], 1);
            a.mov(__dword_ptr[rbx + Status], 0xf);
            a.mov(eax, __dword_ptr[rbx + Status]);
            a.test(eax, 0x40);   // DEVICE_NEEDS_RESET
            a.jnz(fail);
            a.xor(eax, eax);
            a.ret();
            a.Here(ref fail);
            a.mov(eax, 1);
            a.ret();
        }

        /// <summary>submit: publishes descriptor 0 as the next available chain, kicks queue 0 and polls the used ring
        /// (at most ~5 s of running time by the TSC). RAX = 0 when the device used it, 1 on time-out.</summary>
        private void EmitSubmit()
        {
            var wait = a.CreateLabel(); var done = a.CreateLabel();
            a.Here(ref _submit);
            a.mov(rcx, __qword_ptr[(long)Var.AvailIdx]);
            a.mov(edx, ecx);
            a.and(edx, QueueSize - 1);
            a.mov(__word_ptr[r12 + rdx * 2 + Avail + 4], 0);
            a.inc(rcx);
            a.mov(__qword_ptr[(long)Var.AvailIdx], rcx);
            a.mov(__word_ptr[r12 + Avail + 2], cx);   // x86 keeps store order: the entry is visible first
            a.mov(__dword_ptr[rbx + QueueNotify], 0);
            Rdtsc();
            a.mov(r9, rax);                           // the TSC at the last poll
            a.mov(r8, __qword_ptr[(long)Var.TscKhz]);
            a.imul(r8, r8, 5000);
            a.add(r8, rax);
            a.Here(ref wait);
            a.movzx(eax, __word_ptr[r12 + Used + 2]);
            a.cmp(ax, cx);
            a.je(done);
            a.pause();
            Rdtsc();
            // A second or more between two polls is time this guest did not run: a snapshot's pause, or a restore
            // long after the snapshot (the clock moves on by the time that passed). It does not count: re-arm.
            var ran = a.CreateLabel();
            a.mov(r10, rax);
            a.sub(r10, r9);
            a.mov(r9, rax);
            a.mov(r11, __qword_ptr[(long)Var.TscKhz]);
            a.imul(r11, r11, 1000);
            a.cmp(r10, r11);
            a.jb(ran);
            a.mov(r8, __qword_ptr[(long)Var.TscKhz]);
            a.imul(r8, r8, 5000);
            a.add(r8, rax);
            a.Here(ref ran);
            a.cmp(rax, r8);
            a.jb(wait);
            a.mov(eax, 1);
            a.ret();
            a.Here(ref done);
            a.xor(eax, eax);
            a.ret();
        }

        /// <summary>blk_rw: EDI = type, RSI = sector, ECX = data bytes at BlkData (0: none), EDX = 1 when the device
        /// writes the data. RAX = the request's status byte (0xff on time-out).</summary>
        private void EmitBlockRw()
        {
            var noData = a.CreateLabel(); var go = a.CreateLabel(); var timeout = a.CreateLabel();
            a.Here(ref _rw);
            a.mov(__dword_ptr[r12 + Header], edi);
            a.mov(__dword_ptr[r12 + Header + 4], 0);
            a.mov(__qword_ptr[r12 + Header + 8], rsi);
            a.lea(rax, __[r12 + Header]);
            a.mov(__qword_ptr[r12], rax);
            a.mov(__dword_ptr[r12 + 8], 16);
            a.mov(__word_ptr[r12 + 12], 1);      // NEXT
            a.mov(__word_ptr[r12 + 14], 1);
            a.lea(rax, __[r12 + StatusByte]);
            a.test(ecx, ecx);
            a.jz(noData);
            a.mov(rsi, (long)BlkData);
            a.mov(__qword_ptr[r12 + 16], rsi);
            a.mov(__dword_ptr[r12 + 24], ecx);
            a.lea(esi, __[rdx + rdx + 1]);       // NEXT | (WRITE if the device writes)
            a.mov(__word_ptr[r12 + 28], si);
            a.mov(__word_ptr[r12 + 30], 2);
            a.mov(__qword_ptr[r12 + 32], rax);
            a.mov(__dword_ptr[r12 + 40], 1);
            a.mov(__word_ptr[r12 + 44], 2);      // WRITE
            a.mov(__word_ptr[r12 + 46], 0);
            a.jmp(go);
            a.Here(ref noData);
            a.mov(__qword_ptr[r12 + 16], rax);
            a.mov(__dword_ptr[r12 + 24], 1);
            a.mov(__word_ptr[r12 + 28], 2);
            a.mov(__word_ptr[r12 + 30], 0);
            a.Here(ref go);
            a.mov(__byte_ptr[r12 + StatusByte], 0xff);
            a.call(_submit);
            a.test(eax, eax);
            a.jnz(timeout);
            a.movzx(eax, __byte_ptr[r12 + StatusByte]);
            a.ret();
            a.Here(ref timeout);
            a.mov(eax, 0xff);
            a.ret();
        }

        /// <summary>Stamp of word RCX of sector RDX in generation R8 → RAX (0 for generation 0).</summary>
        private void Stamp()
        {
            var zero = a.CreateLabel(); var end = a.CreateLabel();
            a.test(r8, r8);
            a.jz(zero);
            a.mov(rax, r8);
            a.shl(rax, 32);
            a.mov(r11, rdx);
            a.shl(r11, 8);
            a.or(rax, r11);
            a.or(rax, rcx);
            a.jmp(end);
            a.Here(ref zero);
            a.xor(eax, eax);
            a.Here(ref end);
        }

        /// <summary>fill: stamps 8 sectors from sector R9 with generation R8 into BlkData. verify: checks them, one
        /// failure (and a line, for the first 8) per sector that differs.</summary>
        private void EmitPattern()
        {
            var sLoop = a.CreateLabel(); var wLoop = a.CreateLabel();
            a.Here(ref _fill);
            a.mov(rdi, (long)BlkData);
            a.mov(rdx, r9);
            a.lea(r10, __[r9 + 8]);
            a.Here(ref sLoop);
            a.xor(ecx, ecx);
            a.Here(ref wLoop);
            Stamp();
            a.mov(__qword_ptr[rdi], rax);
            a.add(rdi, 8);
            a.inc(ecx);
            a.cmp(ecx, 64);
            a.jb(wLoop);
            a.inc(rdx);
            a.cmp(rdx, r10);
            a.jb(sLoop);
            a.ret();

            var vsLoop = a.CreateLabel(); var vwLoop = a.CreateLabel(); var bad = a.CreateLabel(); var nextSector = a.CreateLabel();
            var quiet = a.CreateLabel();
            a.Here(ref _verify);
            a.mov(rdi, (long)BlkData);
            a.mov(rdx, r9);
            a.lea(r10, __[r9 + 8]);
            a.Here(ref vsLoop);
            a.xor(ecx, ecx);
            a.Here(ref vwLoop);
            Stamp();
            a.cmp(__qword_ptr[rdi + rcx * 8], rax);
            a.jne(bad);
            a.inc(ecx);
            a.cmp(ecx, 64);
            a.jb(vwLoop);
            a.jmp(nextSector);
            a.Here(ref bad);
            a.inc(__qword_ptr[(long)Var.Failures]);
            a.cmp(__qword_ptr[(long)Var.Failures], 8);
            a.ja(quiet);
            rt.LineBegin(a);
            rt.Print(a, "vblk: FAIL sector ");
            rt.PrintDec(a, rdx);
            rt.Print(a, " expected ");
            rt.PrintHex(a, rax);
            rt.Print(a, " found ");
            a.push(rax);
            a.mov(rax, __qword_ptr[rdi + rcx * 8]);
            rt.PrintHex(a, rax);
            a.pop(rax);
            rt.LineEnd(a);
            a.Here(ref quiet);
            a.Here(ref nextSector);
            a.add(rdi, 512);
            a.inc(rdx);
            a.cmp(rdx, r10);
            a.jb(vsLoop);
            a.ret();
        }

        /// <summary>R14 = 0 .. Sectors step 8: read/write 4 KiB at sector R14 with <paramref name="body"/> around it.</summary>
        private void ForEachChunk(Action body)
        {
            var loop = a.CreateLabel(); var done = a.CreateLabel();
            a.xor(r14d, r14d);
            a.Here(ref loop);
            a.cmp(r14, __qword_ptr[(long)Var.Sectors]);
            a.jae(done);
            body();
            a.add(r14, 8);
            a.jmp(loop);
            a.Here(ref done);
        }

        private void Request(uint type, int bytes, bool deviceWrites, string failure)
        {
            var ok = a.CreateLabel();
            a.mov(edi, type);
            a.mov(rsi, r14);
            a.mov(ecx, bytes);
            a.mov(edx, deviceWrites ? 1 : 0);
            a.call(_rw);
            a.test(eax, eax);
            a.jz(ok);
            // One failure, its line saying the status byte (0xff: no answer within the time-out).
            a.inc(__qword_ptr[(long)Var.Failures]);
            a.push(rax);
            rt.LineBegin(a);
            rt.Print(a, failure + " status=");
            a.pop(rax);
            rt.PrintHex(a, rax);
            rt.LineEnd(a);
            a.Here(ref ok);
        }

        private void EmitBlockTest()
        {
            var up = a.CreateLabel(); var sized = a.CreateLabel(); var big = a.CreateLabel(); var writable = a.CreateLabel();
            var roDone = a.CreateLabel(); var noReads = a.CreateLabel(); var readLoop = a.CreateLabel(); var end = a.CreateLabel();
            a.Here(ref _blk);
            a.mov(rbx, __qword_ptr[(long)Var.BlkBase]);
            a.mov(r12, (long)BlkQueue);
            a.call(_init);
            a.test(eax, eax);
            a.jz(up);
            rt.Line(a, "vblk: the virtio-blk device did not come up");
            rt.ExitWith(a, GuestAbi.ExitBadArguments);
            a.Here(ref up);
            // capacity: a 64-bit field read as two 32-bit halves, as the spec asks of MMIO drivers
            a.mov(eax, __dword_ptr[rbx + Config]);
            a.mov(edx, __dword_ptr[rbx + Config + 4]);
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(__qword_ptr[(long)Var.Capacity], rax);
            a.mov(rcx, __qword_ptr[(long)Var.Sectors]);
            a.cmp(rcx, rax);
            a.jbe(sized);
            a.mov(rcx, rax);
            a.Here(ref sized);
            a.and(rcx, ~7);
            a.cmp(rcx, BlkDataBytes / 512 * 1024);   // keep the check modest: CPL0 is emulated here
            a.jbe(big);
            a.mov(rcx, BlkDataBytes / 512 * 1024);
            a.Here(ref big);
            a.mov(__qword_ptr[(long)Var.Sectors], rcx);
            a.test(rcx, rcx);
            var nonEmpty = a.CreateLabel();
            a.jnz(nonEmpty);
            rt.Line(a, "vblk: the disk is smaller than 4 KiB");
            rt.ExitWith(a, GuestAbi.ExitBadArguments);
            a.Here(ref nonEmpty);

            // get-id
            a.xor(r14d, r14d);
            Request(TypeGetId, 20, true, "vblk: FAIL get-id");
            a.mov(__byte_ptr[(long)BlkData + 20], 0);
            rt.LineBegin(a);
            rt.Print(a, "vblk: disk id=");
            a.push(rsi);
            a.mov(rsi, (long)BlkData);
            a.call(rt.Puts);
            a.pop(rsi);
            rt.Print(a, " capacity=");
            rt.PrintDec(a, Var.Capacity);
            rt.Print(a, " sectors, checking ");
            rt.PrintDec(a, Var.Sectors);
            rt.LineEnd(a);

            // the previous generation: word 0 of sector 0 holds it in its top half
            a.xor(r14d, r14d);
            Request(TypeIn, 4096, true, "vblk: FAIL read of sector 0");
            a.mov(rax, __qword_ptr[(long)BlkData]);
            a.shr(rax, 32);
            a.mov(__qword_ptr[(long)Var.PrevGen], rax);
            ForEachChunk(() =>
            {
                Request(TypeIn, 4096, true, "vblk: FAIL read");
                a.mov(r8, __qword_ptr[(long)Var.PrevGen]);
                a.mov(r9, r14);
                a.call(_verify);
            });
            rt.LineBegin(a);
            rt.Print(a, "vblk: found generation ");
            rt.PrintDec(a, Var.PrevGen);
            rt.LineEnd(a);

            a.test(__qword_ptr[(long)Var.Features], 1 << 5);   // VIRTIO_BLK_F_RO
            a.jz(writable);
            a.xor(r14d, r14d);
            a.mov(edi, TypeOut);
            a.xor(esi, esi);
            a.mov(ecx, 4096);
            a.xor(edx, edx);
            a.call(_rw);
            a.cmp(eax, 1);   // VIRTIO_BLK_S_IOERR
            a.je(roDone);
            Fail("vblk: FAIL a read-only disk did not refuse a write with IOERR");
            a.Here(ref roDone);
            rt.Line(a, "vblk: read-only disk refused a write");
            a.jmp(end);

            a.Here(ref writable);
            a.mov(rax, __qword_ptr[(long)Var.PrevGen]);
            a.inc(rax);
            a.mov(__qword_ptr[(long)Var.Gen], rax);
            ForEachChunk(() =>
            {
                a.mov(r8, __qword_ptr[(long)Var.Gen]);
                a.mov(r9, r14);
                a.call(_fill);
                Request(TypeOut, 4096, false, "vblk: FAIL write");
            });
            a.xor(r14d, r14d);
            Request(TypeFlush, 0, false, "vblk: FAIL flush");
            ForEachChunk(() =>
            {
                // poison the buffer so the check sees what the device read, not what we wrote
                a.mov(rdi, (long)BlkData);
                a.mov(ecx, 4096);
                a.mov(eax, 0xAB);
                a.rep.stosb();
                Request(TypeIn, 4096, true, "vblk: FAIL read back");
                a.mov(r8, __qword_ptr[(long)Var.Gen]);
                a.mov(r9, r14);
                a.call(_verify);
            });
            rt.LineBegin(a);
            rt.Print(a, "vblk: wrote and verified generation ");
            rt.PrintDec(a, Var.Gen);
            rt.LineEnd(a);
            EmitSnapshotCheck();

            a.Here(ref end);
            // reads=N: N timed 4 KiB reads, cycling over the checked sectors
            a.mov(r13, __qword_ptr[(long)Var.Reads]);
            a.test(r13, r13);
            a.jz(noReads);
            Rdtsc();
            a.mov(__qword_ptr[(long)Var.T0], rax);
            a.xor(r14d, r14d);
            a.Here(ref readLoop);
            Request(TypeIn, 4096, true, "vblk: FAIL timed read");
            a.add(r14, 8);
            var wrap = a.CreateLabel();
            a.cmp(r14, __qword_ptr[(long)Var.Sectors]);
            a.jb(wrap);
            a.xor(r14d, r14d);
            a.Here(ref wrap);
            a.dec(r13);
            a.jnz(readLoop);
            Rdtsc();
            a.sub(rax, __qword_ptr[(long)Var.T0]);
            a.imul(rax, rax, 1000);
            a.xor(edx, edx);
            a.div(__qword_ptr[(long)Var.TscKhz]);
            rt.LineBegin(a);
            rt.Print(a, "vblk: ");
            rt.PrintDec(a, Var.Reads);
            rt.Print(a, " reads of 4 KiB in ");
            rt.PrintDec(a, rax);
            rt.Print(a, " us");
            rt.LineEnd(a);
            a.Here(ref noReads);
            a.ret();
        }

        /// <summary>snapshot=1: request a snapshot on the control port, wait until the VMM has taken the request
        /// (status leaves 0), then read every sector again through the same queue, pass after pass while the snapshot
        /// runs (status 1; at most 512 passes: a restored VM keeps the status it had at the freeze, 1). The freeze falls
        /// inside these reads, so a restored VM finishes them through the restored device at its saved ring
        /// positions.</summary>
        private void EmitSnapshotCheck()
        {
            var skip = a.CreateLabel(); var wait = a.CreateLabel(); var got = a.CreateLabel(); var tooLong = a.CreateLabel();
            var again = a.CreateLabel();
            a.cmp(__qword_ptr[(long)Var.Snapshot], 0);
            a.je(skip);
            Rdtsc();
            a.mov(r8, __qword_ptr[(long)Var.TscKhz]);
            a.imul(r8, r8, 10_000);
            a.add(r8, rax);
            a.mov(edx, (uint)GuestAbi.ControlPort);
            a.mov(eax, GuestAbi.ControlSnapshotRequest);
            a.@out(dx, eax);
            a.Here(ref wait);
            a.mov(edx, (uint)GuestAbi.ControlPort);
            a.@in(eax, dx);
            a.test(eax, eax);
            a.jnz(got);
            a.pause();
            Rdtsc();
            a.cmp(rax, r8);
            a.jb(wait);
            a.Here(ref tooLong);
            Fail("vblk: FAIL the snapshot request was not taken");
            a.jmp(skip);
            a.Here(ref got);
            a.cmp(eax, 3);   // failed
            a.je(tooLong);
            var passesDone = a.CreateLabel();
            a.mov(r13d, 512);
            a.Here(ref again);
            ForEachChunk(() =>
            {
                a.mov(rdi, (long)BlkData);
                a.mov(ecx, 4096);
                a.mov(eax, 0xAB);
                a.rep.stosb();
                Request(TypeIn, 4096, true, "vblk: FAIL read after the snapshot");
                a.mov(r8, __qword_ptr[(long)Var.Gen]);
                a.mov(r9, r14);
                a.call(_verify);
            });
            a.mov(edx, (uint)GuestAbi.ControlPort);
            a.@in(eax, dx);
            a.cmp(eax, 1);   // still running
            a.jne(passesDone);
            a.dec(r13);
            a.jnz(again);
            a.Here(ref passesDone);
            rt.LineBegin(a);
            rt.Print(a, "vblk: after the snapshot request, generation ");
            rt.PrintDec(a, Var.Gen);
            rt.Print(a, " verified again");
            rt.LineEnd(a);
            a.Here(ref skip);
        }

        /// <summary>
        /// writer=N, the continuous self-checking disk writer. It first reads every block it covers (<c>blocks=</c>, else
        /// the whole disk, at most 1 GiB) and learns each one's generation into a table in RAM (0x200000), checking the
        /// block is wholly of that generation. Then, N times: pick a block at random (an LCG kept in RAM), read it and
        /// check it holds the generation the table says, write it with a new generation (one counter for the whole
        /// disk, so each write's stamp is unique), record that generation in the table once the device completed the
        /// write, flush every <c>flush=</c> writes (64), read it back and check it. <c>snapat=K</c> asks the VMM for a
        /// snapshot after K writes (control port) and goes on at once. At the end every block is read and checked
        /// against the table once more. A VM restored from a snapshot continues this loop: its disk must hold exactly
        /// what its RAM table says, or the reads fail. A line every <c>report=</c> writes (1024): writes, failures,
        /// microseconds since the loop started (the host computes the I/O rate from them).
        /// </summary>
        private void EmitWriter()
        {
            var up = a.CreateLabel(); var useAll = a.CreateLabel(); var counted = a.CreateLabel(); var capped = a.CreateLabel();
            var nonEmpty = a.CreateLabel();
            a.Here(ref _writer);
            a.mov(rbx, __qword_ptr[(long)Var.BlkBase]);
            a.mov(r12, (long)BlkQueue);
            a.call(_init);
            a.test(eax, eax);
            a.jz(up);
            rt.Line(a, "vdisk: the virtio-blk device did not come up");
            rt.ExitWith(a, GuestAbi.ExitBadArguments);
            a.Here(ref up);
            a.test(__qword_ptr[(long)Var.Features], 1 << 5);   // VIRTIO_BLK_F_RO
            var writable = a.CreateLabel();
            a.jz(writable);
            rt.Line(a, "vdisk: the disk is read-only; the writer needs a writable one");
            rt.ExitWith(a, GuestAbi.ExitBadArguments);
            a.Here(ref writable);
            a.mov(eax, __dword_ptr[rbx + Config]);
            a.mov(edx, __dword_ptr[rbx + Config + 4]);
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(__qword_ptr[(long)Var.Capacity], rax);
            a.shr(rax, 3);                                   // whole 4 KiB blocks on the disk
            a.mov(rcx, __qword_ptr[(long)Var.Blocks]);
            a.test(rcx, rcx);
            a.jz(useAll);
            a.cmp(rcx, rax);
            a.jbe(counted);
            a.Here(ref useAll);
            a.mov(rcx, rax);
            a.Here(ref counted);
            a.cmp(rcx, MaxWriterBlocks);
            a.jbe(capped);
            a.mov(ecx, MaxWriterBlocks);
            a.Here(ref capped);
            a.mov(__qword_ptr[(long)Var.Blocks], rcx);
            a.test(rcx, rcx);
            a.jnz(nonEmpty);
            rt.Line(a, "vdisk: the disk is smaller than 4 KiB");
            rt.ExitWith(a, GuestAbi.ExitBadArguments);
            a.Here(ref nonEmpty);
            a.cmp(__qword_ptr[(long)Var.FlushEvery], 0);
            var flushSet = a.CreateLabel();
            a.jne(flushSet);
            a.mov(__qword_ptr[(long)Var.FlushEvery], 1);
            a.Here(ref flushSet);
            var reportSet = a.CreateLabel();
            a.cmp(__qword_ptr[(long)Var.Report], 0);
            a.jne(reportSet);
            a.mov(__qword_ptr[(long)Var.Report], 1024);
            a.Here(ref reportSet);

            // Learn the table: each block's generation is the top half of its first word. fresh=1 (a new sparse image,
            // where reading 1 GiB first would take minutes here): every block is generation 0, as the zeroed table says.
            a.mov(__qword_ptr[(long)Var.Gen], 0);
            var learned = a.CreateLabel();
            a.cmp(__qword_ptr[(long)Var.Fresh], 0);
            a.jne(learned);
            ForEachBlock(() =>
            {
                Request(TypeIn, 4096, true, "vdisk: FAIL read while learning the disk");
                a.mov(rax, __qword_ptr[(long)BlkData]);
                a.shr(rax, 32);
                a.mov(__qword_ptr[r13 * 8 + (long)WriterTable], rax);
                var notMax = a.CreateLabel();
                a.cmp(rax, __qword_ptr[(long)Var.Gen]);
                a.jbe(notMax);
                a.mov(__qword_ptr[(long)Var.Gen], rax);
                a.Here(ref notMax);
                a.mov(r8, rax);
                a.mov(r9, r14);
                a.call(_verify);
            });
            a.Here(ref learned);
            rt.LineBegin(a);
            rt.Print(a, "vdisk: writer over ");
            rt.PrintDec(a, Var.Blocks);
            rt.Print(a, " blocks of 4 KiB, newest generation found ");
            rt.PrintDec(a, Var.Gen);
            rt.Print(a, ", failures=");
            rt.PrintDec(a, Var.Failures);
            rt.LineEnd(a);
            Rdtsc();
            a.mov(__qword_ptr[(long)Var.WriterT0], rax);

            var loop = a.CreateLabel(); var finish = a.CreateLabel(); var noSnap = a.CreateLabel(); var noFlush = a.CreateLabel();
            a.Here(ref loop);
            a.cmp(__qword_ptr[(long)Var.WriterLeft], 0);
            a.je(finish);
            a.mov(rax, __qword_ptr[(long)Var.SnapAt]);
            a.test(rax, rax);
            a.jz(noSnap);
            a.cmp(rax, __qword_ptr[(long)Var.WriterDone]);
            a.jne(noSnap);
            a.mov(edx, (uint)GuestAbi.ControlPort);
            a.mov(eax, GuestAbi.ControlSnapshotRequest);
            a.@out(dx, eax);
            a.Here(ref noSnap);
            // the next block: an LCG step (Knuth's MMIX constants), its high bits modulo the block count
            a.mov(rax, __qword_ptr[(long)Var.Rng]);
            a.mov(rcx, 6364136223846793005L);
            a.imul(rax, rcx);
            a.mov(rcx, 1442695040888963407L);
            a.add(rax, rcx);
            a.mov(__qword_ptr[(long)Var.Rng], rax);
            a.shr(rax, 33);
            a.xor(edx, edx);
            a.div(__qword_ptr[(long)Var.Blocks]);
            a.mov(r13, rdx);
            a.lea(r14, __[r13 * 8]);
            ReadAndCheck("vdisk: FAIL read before a write", () => a.mov(r8, __qword_ptr[r13 * 8 + (long)WriterTable]));
            a.inc(__qword_ptr[(long)Var.Gen]);
            a.mov(r8, __qword_ptr[(long)Var.Gen]);
            a.mov(r9, r14);
            a.call(_fill);
            Request(TypeOut, 4096, false, "vdisk: FAIL write");
            // The device completed the write: from now on the disk holds this generation for the block.
            a.mov(rax, __qword_ptr[(long)Var.Gen]);
            a.mov(__qword_ptr[r13 * 8 + (long)WriterTable], rax);
            a.mov(rax, __qword_ptr[(long)Var.WriterDone]);
            a.inc(rax);
            a.xor(edx, edx);
            a.div(__qword_ptr[(long)Var.FlushEvery]);
            a.test(rdx, rdx);
            a.jnz(noFlush);
            Request(TypeFlush, 0, false, "vdisk: FAIL flush");
            a.Here(ref noFlush);
            ReadAndCheck("vdisk: FAIL read back", () => a.mov(r8, __qword_ptr[(long)Var.Gen]));
            a.inc(__qword_ptr[(long)Var.WriterDone]);
            a.dec(__qword_ptr[(long)Var.WriterLeft]);
            a.mov(rax, __qword_ptr[(long)Var.WriterDone]);
            a.xor(edx, edx);
            a.div(__qword_ptr[(long)Var.Report]);
            a.test(rdx, rdx);
            a.jnz(loop);
            rt.LineBegin(a);
            rt.Print(a, "vdisk: writes=");
            rt.PrintDec(a, Var.WriterDone);
            rt.Print(a, " failures=");
            rt.PrintDec(a, Var.Failures);
            rt.Print(a, " us=");
            Rdtsc();
            a.sub(rax, __qword_ptr[(long)Var.WriterT0]);
            a.imul(rax, rax, 1000);
            a.xor(edx, edx);
            a.div(__qword_ptr[(long)Var.TscKhz]);
            rt.PrintDec(a, rax);
            rt.LineEnd(a);
            a.jmp(loop);

            a.Here(ref finish);
            ForEachBlock(() => ReadAndCheck("vdisk: FAIL read in the final check", () => a.mov(r8, __qword_ptr[r13 * 8 + (long)WriterTable])));
            rt.LineBegin(a);
            rt.Print(a, "vdisk: writer done writes=");
            rt.PrintDec(a, Var.WriterDone);
            rt.Print(a, ", final check of ");
            rt.PrintDec(a, Var.Blocks);
            rt.Print(a, " blocks against the table, failures=");
            rt.PrintDec(a, Var.Failures);
            rt.LineEnd(a);
            a.ret();
        }

        /// <summary>R13 = 0 .. Blocks, R14 = R13 * 8 (its first sector), around <paramref name="body"/>.</summary>
        private void ForEachBlock(Action body)
        {
            var loop = a.CreateLabel(); var done = a.CreateLabel();
            a.xor(r13d, r13d);
            a.Here(ref loop);
            a.cmp(r13, __qword_ptr[(long)Var.Blocks]);
            a.jae(done);
            a.lea(r14, __[r13 * 8]);
            body();
            a.inc(r13);
            a.jmp(loop);
            a.Here(ref done);
        }

        /// <summary>Poisons the buffer, reads the block at sector R14 and checks it against the generation
        /// <paramref name="loadGeneration"/> puts into R8.</summary>
        private void ReadAndCheck(string failure, Action loadGeneration)
        {
            a.mov(rdi, (long)BlkData);
            a.mov(ecx, 4096);
            a.mov(eax, 0xAB);
            a.rep.stosb();
            Request(TypeIn, 4096, true, failure);
            loadGeneration();
            a.mov(r9, r14);
            a.call(_verify);
        }

        private void EmitRngTest()
        {
            var present = a.CreateLabel(); var up = a.CreateLabel(); var used = a.CreateLabel(); var nonZero = a.CreateLabel();
            var done = a.CreateLabel();
            a.Here(ref _rng);
            a.mov(rbx, __qword_ptr[(long)Var.RngBase]);
            a.test(rbx, rbx);
            a.jnz(present);
            a.ret();
            a.Here(ref present);
            a.mov(r12, (long)RngQueue);
            a.call(_init);
            a.test(eax, eax);
            a.jz(up);
            Fail("vrng: FAIL the virtio-rng device did not come up");
            a.ret();
            a.Here(ref up);
            a.mov(rax, (long)RngBuffer);
            a.mov(__qword_ptr[r12], rax);
            a.mov(__dword_ptr[r12 + 8], 64);
            a.mov(__word_ptr[r12 + 12], 2);      // WRITE
            a.mov(__word_ptr[r12 + 14], 0);
            a.call(_submit);
            a.test(eax, eax);
            a.jz(used);
            Fail("vrng: FAIL no answer");
            a.ret();
            a.Here(ref used);
            a.cmp(__dword_ptr[r12 + Used + 8], 64);   // used.ring[0].len
            a.je(nonZero);
            Fail("vrng: FAIL the device did not fill 64 bytes");
            a.ret();
            a.Here(ref nonZero);
            a.mov(rax, __qword_ptr[(long)RngBuffer]);
            for (int i = 1; i < 8; i++) a.or(rax, __qword_ptr[(long)RngBuffer + 8 * i]);
            a.test(rax, rax);
            a.jnz(done);
            Fail("vrng: FAIL 64 zero bytes");
            a.ret();
            a.Here(ref done);
            rt.Line(a, "vrng: 64 random bytes");
            a.ret();
        }
    }
}
