namespace MiniVmm.Core.Boot;

/// <summary>How MiniVmm boots a kernel file, told from its content.</summary>
public enum KernelImageKind
{
    /// <summary>An ELF with the Xen PVH entry note: 32-bit PVH entry (MiniVmm's firmware, <c>CONFIG_PVH</c> kernels).</summary>
    Pvh,
    /// <summary>An ELF without the PVH note: a vmlinux for the Linux 64-bit boot protocol.</summary>
    Vmlinux,
    /// <summary>A Linux bzImage (boot flag 0xAA55 / "HdrS" setup header): the 64-bit boot protocol.</summary>
    BzImage,
}

/// <summary>Detects <see cref="KernelImageKind"/> from a file's bytes.</summary>
public static class KernelImageDetector
{
    /// <summary>The kind of image; a file that is none of them throws.</summary>
    /// <exception cref="BootImageException">Neither an ELF nor a bzImage.</exception>
    public static KernelImageKind Detect(ReadOnlySpan<byte> file)
    {
        if (ElfExecutable.HasMagic(file))
        {
            // A malformed ELF is reported by the parser for the kind it claims to be: with a PVH note, as PVH.
            return ElfExecutable.TryParse(file, out ElfExecutable? elf) is null && elf!.PvhEntry is null
                ? KernelImageKind.Vmlinux
                : KernelImageKind.Pvh;
        }
        bool bootFlag = file.Length >= LinuxSetupHeader.BootFlag + 2 &&
                        file[LinuxSetupHeader.BootFlag] == 0x55 && file[LinuxSetupHeader.BootFlag + 1] == 0xAA;
        bool hdrS = file.Length >= LinuxSetupHeader.Header + 4 &&
                    file.Slice(LinuxSetupHeader.Header, 4).SequenceEqual("HdrS"u8);
        if (bootFlag || hdrS)
            return KernelImageKind.BzImage;
        throw new BootImageException(
            $"not a kernel image MiniVmm can boot ({file.Length} bytes): neither an ELF (PVH image or vmlinux, " +
            "magic \\x7fELF) nor a Linux bzImage (boot flag 0xAA55 at 0x1fe, \"HdrS\" at 0x202)");
    }
}
