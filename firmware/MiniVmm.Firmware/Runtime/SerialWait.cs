using Iced.Intel;
using MiniVmm.Firmware.Boot;
using static Iced.Intel.AssemblerRegisters;

namespace MiniVmm.Firmware.Runtime;

/// <summary>
/// The bounded wait for the UART's transmitter (LSR bit 5, THRE), shared by the 32-bit hello guest and the 64-bit
/// runtime: the same instructions encode in both modes. Bounded, so a VMM without a real LSR cannot hang a guest.
/// Clobbers ECX, EDX and AL; leaves EDX = the THR port, ready for the `out`.
/// </summary>
internal static class SerialWait
{
    public static void EmitWaitForTransmitter(Assembler a)
    {
        var poll = a.CreateLabel();
        var ready = a.CreateLabel();
        a.mov(ecx, 100_000);
        a.mov(edx, (uint)GuestAbi.SerialLsrPort);
        a.Here(ref poll);
        a.@in(al, dx);
        a.test(al, 0x20);
        a.jnz(ready);
        a.dec(ecx);
        a.jnz(poll);
        a.Here(ref ready);
        a.mov(edx, (uint)GuestAbi.SerialPort);
    }
}
