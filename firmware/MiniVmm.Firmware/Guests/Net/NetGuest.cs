using Iced.Intel;
using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Elf;
using MiniVmm.Firmware.Runtime;
using static Iced.Intel.AssemblerRegisters;
using static MiniVmm.Firmware.Guests.Net.NetGuestLayout;

namespace MiniVmm.Firmware.Guests.Net;

/// <summary>
/// vnet.elf: a minimal virtio-net driver at CPL3 (virtio-mmio version 2, VERSION_1 and MAC only, polled rings, no
/// interrupts) that echoes frames: every received frame of EtherType <see cref="EchoEtherType"/> goes back out with
/// its source and destination MACs swapped; frames of other types are counted and dropped. The device comes from
/// <c>virtio_mmio.device=SIZE@0xADDR:IRQ</c> on the command line; <c>frames=N</c> exits 0 after N echoes (default 0:
/// echo for ever). Prints <c>vnet: ready mac=0x...</c> once its receive buffers are posted. Exit 3 when no network
/// device is found or it does not come up.
/// </summary>
public static class NetGuest
{
    public const uint DeviceIdNet = 1;
    /// <summary>IEEE 802 "local experimental" EtherType 1 (0x88B5): never used by a real protocol stack.</summary>
    public const ushort EchoEtherType = 0x88B5;
    public const string ReadyLine = "vnet: ready";

    public static byte[] Build()
    {
        var layout = NetGuestLayout.Boot;
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
        if (code32.End > CodeLimit) throw new InvalidOperationException($"vnet code ends at 0x{code32.End:x}, past 0x{CodeLimit:x}");

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

    /// <summary>The guest's code. RBX = the device window throughout; routines clobber RAX, RCX, RDX, RSI, RDI, R8-R11.</summary>
    private sealed class Emitter(Assembler a, Runtime64 rt)
    {
        // virtio-mmio registers (virtio 1.2 §4.2.2)
        private const int Magic = 0x00, Version = 0x04, DeviceId = 0x08;
        private const int DriverFeatures = 0x20, DriverFeaturesSel = 0x24, QueueSel = 0x30, QueueNumMax = 0x34, QueueNum = 0x38;
        private const int QueueReady = 0x44, QueueNotify = 0x50, Status = 0x70, QueueDesc = 0x80, QueueDriver = 0x90, QueueDevice = 0xa0;
        private const int Config = 0x100;
        private const int NetHeader = 12, MacOffset = NetHeader, EtherTypeOffset = NetHeader + 12;
        /// <summary>The EtherType as a little-endian word load sees its big-endian bytes.</summary>
        private const int EchoEtherTypeInMemory = (EchoEtherType >> 8) | ((EchoEtherType & 0xff) << 8);

        private Label _match = a.CreateLabel("match"), _dec = a.CreateLabel("parse_dec"), _hex = a.CreateLabel("parse_hex");
        private Label _parse = a.CreateLabel("parse_cmdline"), _probe = a.CreateLabel("probe"), _init = a.CreateLabel("dev_init");
        private Label _setupQueue = a.CreateLabel("setup_queue"), _echo = a.CreateLabel("echo_loop");

        public void EmitAll(Label main)
        {
            EmitMain(main);
            EmitCmdline();
            EmitProbe();
            EmitSetupQueue();
            EmitInit();
            EmitEcho();
        }

        private void EmitMain(Label main)
        {
            var haveCmdline = a.CreateLabel(); var haveNet = a.CreateLabel(); var up = a.CreateLabel();
            a.Here(ref main);
            a.mov(rax, __qword_ptr[(long)Var.StartInfo]);
            a.cmp(__dword_ptr[rax], GuestAbi.HvmStartInfoMagic);
            a.jne(haveCmdline);
            a.mov(rsi, __qword_ptr[rax + 24]);
            a.test(rsi, rsi);
            a.jz(haveCmdline);
            a.call(_parse);
            a.Here(ref haveCmdline);
            a.mov(rbx, __qword_ptr[(long)Var.NetBase]);
            a.test(rbx, rbx);
            a.jnz(haveNet);
            rt.Line(a, "vnet: no virtio-net device on the command line (virtio_mmio.device=...)");
            rt.ExitWith(a, GuestAbi.ExitBadArguments);
            a.Here(ref haveNet);
            a.call(_init);
            a.test(eax, eax);
            a.jz(up);
            rt.Line(a, "vnet: the virtio-net device did not come up");
            rt.ExitWith(a, GuestAbi.ExitBadArguments);
            a.Here(ref up);
            // The MAC from config space (byte reads are allowed for config fields), printed as one hex number.
            a.xor(eax, eax);
            for (int i = 0; i < 6; i++)
            {
                a.shl(rax, 8);
                a.movzx(ecx, __byte_ptr[rbx + Config + i]);
                a.or(rax, rcx);
            }
            rt.LineBegin(a);
            rt.Print(a, ReadyLine + " mac=");
            rt.PrintHex(a, rax);
            rt.LineEnd(a);
            a.call(_echo);
            rt.LineBegin(a);
            rt.Print(a, "vnet: echoed ");
            rt.PrintDec(a, Var.Echoed);
            rt.Print(a, " frames, ignored ");
            rt.PrintDec(a, Var.Ignored);
            rt.LineEnd(a);
            rt.ExitWith(a, GuestAbi.ExitSuccess);
        }

        /// <summary>parse_cmdline: RSI = NUL-terminated command line; keys are matched at token starts only.</summary>
        private void EmitCmdline()
        {
            var loop = a.CreateLabel(); var next = a.CreateLabel(); var done = a.CreateLabel(); var notDev = a.CreateLabel();
            var toAt = a.CreateLabel(); var notFrames = a.CreateLabel(); var tokenStart = a.CreateLabel();
            a.Here(ref _parse);
            a.mov(r10d, 1);
            a.Here(ref loop);
            a.movzx(eax, __byte_ptr[rsi]);
            a.test(eax, eax);
            a.jz(done);
            a.test(r10d, r10d);
            a.jz(next);
            MatchKey("virtio_mmio.device=", notDev);
            a.Here(ref toAt);
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
            MatchKey("frames=", notFrames);
            a.call(_dec);
            a.mov(__qword_ptr[(long)Var.Frames], rax);
            a.xor(r10d, r10d);
            a.jmp(loop);
            a.Here(ref notFrames);
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

            var hLoop = a.CreateLabel(); var hEnd = a.CreateLabel(); var hAdd = a.CreateLabel();
            a.Here(ref _hex);
            a.xor(eax, eax);
            a.Here(ref hLoop);
            a.movzx(ecx, __byte_ptr[rsi]);
            a.or(ecx, 0x20);
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

        /// <summary>probe: RDI = a virtio-mmio window; remembers the first network device.</summary>
        private void EmitProbe()
        {
            var done = a.CreateLabel();
            a.Here(ref _probe);
            a.cmp(__dword_ptr[rdi + Magic], 0x74726976);
            a.jne(done);
            a.cmp(__dword_ptr[rdi + Version], 2);
            a.jne(done);
            a.cmp(__dword_ptr[rdi + DeviceId], (int)DeviceIdNet);
            a.jne(done);
            a.cmp(__qword_ptr[(long)Var.NetBase], 0);
            a.jne(done);
            a.mov(__qword_ptr[(long)Var.NetBase], rdi);
            a.Here(ref done);
            a.ret();
        }

        /// <summary>setup_queue: ECX = queue index, R8 = its area. RAX = 0 when the device takes it.</summary>
        private void EmitSetupQueue()
        {
            var fail = a.CreateLabel();
            a.Here(ref _setupQueue);
            a.mov(__dword_ptr[rbx + QueueSel], ecx);
            a.mov(eax, __dword_ptr[rbx + QueueNumMax]);
            a.cmp(eax, QueueSize);
            a.jb(fail);
            a.mov(__dword_ptr[rbx + QueueNum], QueueSize);
            a.mov(__dword_ptr[rbx + QueueDesc], r8d);
            a.mov(__dword_ptr[rbx + QueueDesc + 4], 0);
            a.lea(eax, __[r8 + Avail]);
            a.mov(__dword_ptr[rbx + QueueDriver], eax);
            a.mov(__dword_ptr[rbx + QueueDriver + 4], 0);
            a.lea(eax, __[r8 + Used]);
            a.mov(__dword_ptr[rbx + QueueDevice], eax);
            a.mov(__dword_ptr[rbx + QueueDevice + 4], 0);
            a.mov(__dword_ptr[rbx + QueueReady], 1);
            a.xor(eax, eax);
            a.ret();
            a.Here(ref fail);
            a.mov(eax, 1);
            a.ret();
        }

        /// <summary>dev_init: the probe sequence of virtio 1.2 §3.1.1 accepting VERSION_1 and MAC; posts every receive
        /// buffer (descriptor i = buffer i, device-writable). RAX = 0 when the device is live.</summary>
        private void EmitInit()
        {
            var fail = a.CreateLabel(); var post = a.CreateLabel();
            a.Here(ref _init);
            a.mov(__dword_ptr[rbx + Status], 0);
            a.mov(__dword_ptr[rbx + Status], 1);
            a.mov(__dword_ptr[rbx + Status], 3);
            a.mov(__dword_ptr[rbx + DriverFeaturesSel], 1);
            a.mov(__dword_ptr[rbx + DriverFeatures], 1);        // VERSION_1 (bit 32)
            a.mov(__dword_ptr[rbx + DriverFeaturesSel], 0);
            a.mov(__dword_ptr[rbx + DriverFeatures], 1 << 5);   // VIRTIO_NET_F_MAC
            a.mov(__dword_ptr[rbx + Status], 0xb);
            a.mov(eax, __dword_ptr[rbx + Status]);
            a.test(eax, 8);
            a.jz(fail);
            a.xor(ecx, ecx);
            a.mov(r8, (long)RxQueue);
            a.call(_setupQueue);
            a.test(eax, eax);
            a.jnz(fail);
            a.mov(ecx, 1);
            a.mov(r8, (long)TxQueue);
            a.call(_setupQueue);
            a.test(eax, eax);
            a.jnz(fail);
            // receive descriptors and the available ring, all published before DRIVER_OK
            a.xor(ecx, ecx);
            a.Here(ref post);
            a.mov(eax, ecx);
            a.shl(eax, 11);                                       // * BufferBytes
            a.add(eax, (int)RxBuffers);
            a.mov(edx, ecx);
            a.shl(edx, 4);
            a.mov(__qword_ptr[rdx + (long)RxQueue], rax);
            a.mov(__dword_ptr[rdx + (long)RxQueue + 8], BufferBytes);
            a.mov(__word_ptr[rdx + (long)RxQueue + 12], 2);      // WRITE
            a.mov(__word_ptr[rdx + (long)RxQueue + 14], 0);
            a.mov(__word_ptr[rcx * 2 + (long)RxQueue + Avail + 4], cx);
            a.inc(ecx);
            a.cmp(ecx, QueueSize);
            a.jb(post);
            a.mov(__word_ptr[(long)RxQueue + Avail + 2], QueueSize);
            a.mov(__qword_ptr[(long)Var.RxAvail], QueueSize);
            a.mov(__dword_ptr[rbx + Status], 0xf);
            a.mov(eax, __dword_ptr[rbx + Status]);
            a.test(eax, 0x40);   // DEVICE_NEEDS_RESET
            a.jnz(fail);
            a.mov(__dword_ptr[rbx + QueueNotify], 0);
            a.xor(eax, eax);
            a.ret();
            a.Here(ref fail);
            a.mov(eax, 1);
            a.ret();
        }

        /// <summary>echo_loop: waits for each received frame (polling the used ring at CPL3), echoes it from the same
        /// buffer with the MACs swapped, waits until the device has sent it, then posts the buffer again. Returns after
        /// frames= echoes (never when 0).</summary>
        private void EmitEcho()
        {
            var wait = a.CreateLabel(); var got = a.CreateLabel(); var ignore = a.CreateLabel();
            var txWait = a.CreateLabel(); var sent = a.CreateLabel();
            a.Here(ref _echo);
            a.Here(ref wait);
            a.movzx(eax, __word_ptr[(long)RxQueue + Used + 2]);
            a.cmp(ax, __word_ptr[(long)Var.RxSeen]);
            a.jne(got);
            a.pause();
            a.jmp(wait);

            a.Here(ref got);
            // used element: id (u32), len (u32) at used.ring[RxSeen % size]
            a.movzx(ecx, __word_ptr[(long)Var.RxSeen]);
            a.and(ecx, QueueSize - 1);
            a.mov(r9d, __dword_ptr[rcx * 8 + (long)RxQueue + Used + 4]);   // id
            a.mov(r10d, __dword_ptr[rcx * 8 + (long)RxQueue + Used + 8]);  // len
            a.inc(__qword_ptr[(long)Var.RxSeen]);
            a.and(r9d, QueueSize - 1);                                       // never trust an index
            a.mov(edi, r9d);
            a.shl(edi, 11);
            a.add(edi, (int)RxBuffers);                                      // RDI = the buffer
            a.cmp(r10d, NetHeader + 14);
            a.jb(ignore);
            a.cmp(r10d, BufferBytes);
            a.ja(ignore);
            a.cmp(__word_ptr[rdi + EtherTypeOffset], EchoEtherTypeInMemory);
            a.jne(ignore);
            // swap destination (bytes 0-5) and source (6-11) of the Ethernet header
            a.mov(eax, __dword_ptr[rdi + MacOffset]);
            a.movzx(ecx, __word_ptr[rdi + MacOffset + 4]);
            a.mov(edx, __dword_ptr[rdi + MacOffset + 6]);
            a.movzx(esi, __word_ptr[rdi + MacOffset + 10]);
            a.mov(__dword_ptr[rdi + MacOffset], edx);
            a.mov(__word_ptr[rdi + MacOffset + 4], si);
            a.mov(__dword_ptr[rdi + MacOffset + 6], eax);
            a.mov(__word_ptr[rdi + MacOffset + 10], cx);
            // a plain frame: no offload flags, no GSO, num_buffers 0 on transmit
            a.mov(__qword_ptr[rdi], 0);
            a.mov(__dword_ptr[rdi + 8], 0);
            // transmit descriptor TxAvail % size = the buffer, device-readable
            a.mov(rcx, __qword_ptr[(long)Var.TxAvail]);
            a.mov(edx, ecx);
            a.and(edx, QueueSize - 1);
            a.mov(r8d, edx);
            a.shl(r8d, 4);
            a.mov(__qword_ptr[r8 + (long)TxQueue], rdi);
            a.mov(__dword_ptr[r8 + (long)TxQueue + 8], r10d);
            a.mov(__dword_ptr[r8 + (long)TxQueue + 12], 0);                 // flags 0, next 0
            a.mov(__word_ptr[rdx * 2 + (long)TxQueue + Avail + 4], dx);
            a.inc(rcx);
            a.mov(__qword_ptr[(long)Var.TxAvail], rcx);
            a.mov(__word_ptr[(long)TxQueue + Avail + 2], cx);              // x86 keeps store order
            a.mov(__dword_ptr[rbx + QueueNotify], 1);
            a.Here(ref txWait);                                              // the buffer is reused: wait for the send
            a.movzx(eax, __word_ptr[(long)TxQueue + Used + 2]);
            a.cmp(ax, cx);
            a.je(sent);
            a.pause();
            a.jmp(txWait);
            a.Here(ref sent);
            a.inc(__qword_ptr[(long)Var.Echoed]);
            Repost();
            a.mov(rax, __qword_ptr[(long)Var.Frames]);
            a.test(rax, rax);
            a.jz(wait);
            a.cmp(__qword_ptr[(long)Var.Echoed], rax);
            a.jb(wait);
            a.ret();

            a.Here(ref ignore);
            a.inc(__qword_ptr[(long)Var.Ignored]);
            Repost();
            a.jmp(wait);
        }

        /// <summary>Puts receive buffer R9 back in the available ring and tells the device.</summary>
        private void Repost()
        {
            a.mov(rcx, __qword_ptr[(long)Var.RxAvail]);
            a.mov(edx, ecx);
            a.and(edx, QueueSize - 1);
            a.mov(__word_ptr[rdx * 2 + (long)RxQueue + Avail + 4], r9w);
            a.inc(rcx);
            a.mov(__qword_ptr[(long)Var.RxAvail], rcx);
            a.mov(__word_ptr[(long)RxQueue + Avail + 2], cx);
            a.mov(__dword_ptr[rbx + QueueNotify], 0);
        }
    }
}
