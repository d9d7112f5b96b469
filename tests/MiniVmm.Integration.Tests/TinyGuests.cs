using Iced.Intel;
using MiniVmm.Firmware;
using MiniVmm.Firmware.Elf;
using static Iced.Intel.AssemblerRegisters;

namespace MiniVmm.Integration.Tests;

/// <summary>Minimal misbehaving guests (32-bit PVH entry, a few instructions) for failure-path tests.</summary>
public static class TinyGuests
{
    private const ulong Base = 0x10_0000;

    public static byte[] Build(Action<Assembler> body)
    {
        var a = new Assembler(32);
        body(a);
        var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), Base);
        var code = stream.ToArray();
        return Elf64Writer.Write(Base, [new ElfSegment(Base, code, (ulong)code.Length)],
            [ElfNote.U64(GuestAbi.XenNoteName, GuestAbi.XenElfNotePhys32Entry, Base)]);
    }

    /// <summary>Exits through the debug-exit port with the value in EAX.</summary>
    public static void ExitWithEax(Assembler a)
    {
        a.mov(dx, (int)GuestAbi.DebugExitPort);
        a.@out(dx, eax);
        a.hlt();
    }

    /// <summary>No IDT: an invalid opcode becomes a triple fault.</summary>
    public static byte[] TripleFault() => Build(a => a.ud2());

    /// <summary>Probes unmapped ports and MMIO, then exits with (PIO read) | (MMIO read << 8): 0x00FF expected.</summary>
    public static byte[] UnmappedAccesses() => Build(a =>
    {
        a.mov(dx, 0x1234);
        a.mov(al, 0x55);
        a.@out(dx, al);                          // unmapped port write: ignored
        a.mov(__dword_ptr[0xd000_0000], 0x1234_5678); // no RAM, no device: unmapped MMIO write
        a.mov(ecx, __dword_ptr[0xd000_0000]);      // unmapped MMIO read: zeros
        a.shl(ecx, 8);
        a.mov(dx, 0x5555);
        a.xor(eax, eax);
        a.@in(al, dx);                           // unmapped port read: all ones
        a.or(eax, ecx);
        ExitWithEax(a);
    });

    /// <summary>
    /// x87 FLD1 at CPL0: KVM's instruction emulator (which runs all CPL0 code on kvm_pvm) has no x87 loads. On hardware
    /// virtualization it simply runs, and the guest exits with 0x42.
    /// </summary>
    public static byte[] UnsupportedInstruction() => Build(a =>
    {
        a.fld1();
        a.mov(eax, 0x42);
        ExitWithEax(a);
    });

    /// <summary>Pulses reset through the i8042 command port.</summary>
    public static byte[] I8042Reset() => Build(a =>
    {
        a.mov(al, 0xfe);
        a.@out(0x64, al);
        a.hlt();
    });
}
