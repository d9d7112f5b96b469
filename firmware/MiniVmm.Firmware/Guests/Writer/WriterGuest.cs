using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Elf;
using MiniVmm.Firmware.Runtime;

namespace MiniVmm.Firmware.Guests.Writer;

/// <summary>
/// Builds writer.elf, the self-checking memory writer (see firmware/README.md for its parameters and output).
/// Assembly order matters: the 64-bit code goes first because the 32-bit entries far-jump to its address.
/// </summary>
public static class WriterGuest
{
    public static byte[] Build() => BuildImage().Elf;

    /// <summary>The ELF plus the addresses tests want to check.</summary>
    public sealed record Image(byte[] Elf, ulong BspEntry, ulong ApEntry, ulong Entry64, ulong CodeEnd);

    public static Image BuildImage()
    {
        var layout = WriterLayout.Boot;
        var block64 = new CodeBlock(64, WriterLayout.CodeBase);
        var a = block64.Asm;
        var rt = new Runtime64(a, WriterLayout.Var.LineLock, GuestAbi.StatusPageGpa);
        var report = new WriterReport(a, rt);
        var sweep = new WriterSweep(a, rt, report.Report);
        var cmdline = new WriterCmdline(a, rt);
        var main = new WriterMain(a, rt, cmdline, sweep, report);
        var bspUser = a.CreateLabel("bsp_main");
        var apUser = a.CreateLabel("ap_main");

        var entry64 = BootStub.EmitLongModeEntry(a, layout, bspUser, apUser, WriterMain.EmitApGate);
        main.EmitBsp(a, bspUser);
        main.EmitAp(a, apUser);
        sweep.Emit(a);
        report.Emit(a);
        cmdline.Emit(a);
        rt.Emit(a);
        rt.Strings.Emit(a);
        var code64 = block64.Assemble();

        var block32 = new CodeBlock(32, (code64.End + 15) & ~15UL);
        var (bsp, ap) = BootStub.EmitProtectedModeEntries(block32.Asm, layout, code64.LabelAddress(entry64),
            WriterLayout.Var.StartInfo);
        var code32 = block32.Assemble();
        if (code32.End > WriterLayout.CodeLimit)
            throw new InvalidOperationException($"writer code ends at 0x{code32.End:x}, past 0x{WriterLayout.CodeLimit:x}");

        // File-backed part of the single PT_LOAD: data page .. end of code; the stacks above are bss.
        var image = new byte[code32.End - GuestAbi.ImageBase];
        Place(image, layout.Gdt, BootTables.BuildGdt(layout));
        Place(image, layout.Gdtr, BootTables.BuildGdtr(layout));
        Place(image, layout.TssBase, BootTables.BuildTssArea(layout));
        Place(image, layout.Pml4, BootTables.BuildPageTables(layout));
        Place(image, code64.Address, code64.Bytes);
        Place(image, code32.Address, code32.Bytes);

        ulong bspEntry = code32.LabelAddress(bsp);
        ulong apEntry = code32.LabelAddress(ap);
        var elf = Elf64Writer.Write(bspEntry,
            [new ElfSegment(GuestAbi.ImageBase, image, WriterLayout.ImageEnd - GuestAbi.ImageBase)],
            [
                ElfNote.U64(GuestAbi.XenNoteName, GuestAbi.XenElfNotePhys32Entry, bspEntry),
                ElfNote.U64(GuestAbi.MiniVmmNoteName, GuestAbi.MiniVmmNoteApEntry, apEntry),
            ]);
        return new Image(elf, bspEntry, apEntry, code64.LabelAddress(entry64), code32.End);
    }

    private static void Place(byte[] image, ulong address, byte[] data)
    {
        int offset = checked((int)(address - GuestAbi.ImageBase));
        if (image.AsSpan(offset, data.Length).ContainsAnyExcept((byte)0))
            throw new InvalidOperationException($"overlap at 0x{address:x}");
        data.CopyTo(image, offset);
    }
}
