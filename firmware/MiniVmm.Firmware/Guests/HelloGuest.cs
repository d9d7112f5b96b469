using System.Text;
using Iced.Intel;
using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Elf;
using MiniVmm.Firmware.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace MiniVmm.Firmware.Guests;

/// <summary>
/// The smallest useful PVH guest: prints <see cref="GuestAbi.HelloLine"/> on COM1 and writes 0 to the debug-exit port.
/// It stays in the 32-bit PVH entry state (paging off, CPL0) on purpose: ~30 bytes of output through the instruction
/// emulator is instant, it writes no memory at all (no stack), and it tests only the VMM's ELF loading, entry state
/// and port I/O, which makes it the first thing to boot on a new VMM.
/// </summary>
public static class HelloGuest
{
    /// <summary>The message sits at the image base; code follows it (32-bit code has no RIP-relative addressing, so
    /// the message address must be known before the code is assembled).</summary>
    public const ulong MessageAddress = GuestAbi.ImageBase;
    public const ulong EntryAddress = GuestAbi.ImageBase + 0x40;

    public static byte[] Build()
    {
        var block = new CodeBlock(32, EntryAddress);
        var a = block.Asm;
        var entry = a.CreateLabel("pvh_entry");
        var next = a.CreateLabel();
        var done = a.CreateLabel();
        var halt = a.CreateLabel();

        a.Here(ref entry);
        a.cli();
        a.mov(esi, (uint)MessageAddress);
        a.Here(ref next);
        a.movzx(ebx, __byte_ptr[esi]);
        a.test(ebx, ebx);
        a.jz(done);
        SerialWait.EmitWaitForTransmitter(a);
        a.mov(eax, ebx);
        a.@out(dx, al);
        a.inc(esi);
        a.jmp(next);
        a.Here(ref done);
        a.mov(edx, (uint)GuestAbi.DebugExitPort);
        a.mov(eax, GuestAbi.ExitSuccess);
        a.@out(dx, eax);
        a.Here(ref halt);          // only reached if the VMM ignores the debug-exit port
        a.hlt();
        a.jmp(halt);

        var code = block.Assemble();
        ulong entryAddr = code.LabelAddress(entry);
        var image = new byte[(int)(EntryAddress - MessageAddress) + code.Bytes.Length];
        Encoding.ASCII.GetBytes(GuestAbi.HelloLine + "\n\0").CopyTo(image, 0);
        code.Bytes.CopyTo(image, (int)(EntryAddress - MessageAddress));
        return Elf64Writer.Write(entryAddr,
            [new ElfSegment(MessageAddress, image, (ulong)image.Length, ElfSegmentFlags.Read | ElfSegmentFlags.Execute)],
            [ElfNote.U64(GuestAbi.XenNoteName, GuestAbi.XenElfNotePhys32Entry, entryAddr)]);
    }
}
