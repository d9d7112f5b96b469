using Microsoft.Extensions.Logging;
using MiniVmm.Core.Boot;
using MiniVmm.Devices;
using MiniVmm.Machine.Diagnostics;
using MiniVmm.Machine.Vcpus;

namespace MiniVmm.Machine;

/// <summary>The Linux boot protocol side of loading a kernel (the PVH side is <c>LoadPvh</c>).</summary>
public sealed partial class Vm
{
    /// <summary>Most initrd bytes read: one array holds the file, and it must fit below the 32-bit MMIO hole anyway.</summary>
    private const long MaxInitrdBytes = int.MaxValue;

    /// <summary>The kernel file as the kind its content says: a PVH image, or a vmlinux / bzImage for the Linux
    /// 64-bit boot protocol. Exactly one of the two is set. With an initrd, a PVH image that is a Linux kernel built
    /// with <c>CONFIG_PVH</c> (an ELF64 x86-64 vmlinux carrying Linux's version banner) boots through the Linux
    /// protocol, which passes the initrd (the PVH loader has no module list); any other PVH image stays PVH.</summary>
    private static (PvhElfImage? Pvh, LinuxKernelImage? Linux) ParseKernel(string path, byte[] kernel, bool withInitrd)
    {
        try
        {
            return KernelImageDetector.Detect(kernel) switch
            {
                KernelImageKind.Pvh when withInitrd && kernel.AsSpan().IndexOf("Linux version "u8) >= 0 &&
                                           LinuxKernelImage.TryParseVmlinux(kernel, out LinuxKernelImage? vmlinux, out _)
                    => (null, vmlinux),
                KernelImageKind.Pvh => (PvhElfImage.Parse(kernel), null),
                KernelImageKind.Vmlinux => (null, LinuxKernelImage.ParseVmlinux(kernel)),
                _ => (null, LinuxKernelImage.ParseBzImage(kernel)),
            };
        }
        catch (BootImageException e) { throw new VmConfigException($"{path}: {e.Message}", e); }
    }

    private static byte[] ReadInitrd(string path, ulong memoryBytes)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists && !Directory.Exists(path)) throw new VmConfigException($"initrd '{path}' does not exist");
            if (KvmSharp.FileKinds.Refusal(path, "initrd", "a regular file", KvmSharp.FileKind.Regular) is { } why) throw new VmConfigException(why);
            if (info.Length == 0) throw new VmConfigException($"initrd '{path}' is empty");
            // Checked before reading: a file larger than RAM cannot fit, whatever the kernel.
            if ((ulong)info.Length >= memoryBytes || info.Length > MaxInitrdBytes)
                throw new VmConfigException($"initrd '{path}' is {info.Length} bytes ({info.Length >> 20} MiB), more than guest RAM " +
                    $"({memoryBytes >> 20} MiB, --mem) can hold next to the kernel");
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VmConfigException($"cannot read initrd '{path}': {e.Message}", e);
        }
    }

    private void LoadLinux(LinuxKernelImage kernel, byte[] initrd)
    {
        LinuxBootInfo boot;
        try
        {
            boot = LinuxLoader.Load(Memory, kernel, EffectiveCommandLine, initrd, _vcpus.Length, _virtioWindows);
        }
        catch (BootImageException e)
        {
            string what = e.Input == BootInput.Initrd && Config.InitrdPath is { } p ? p : Config.KernelPath;
            throw new VmConfigException($"{what}: {e.Message}", e);
        }
        // The boot CPU enters the kernel; the others wait for the kernel's INIT/SIPI, as on a PC.
        LinuxEntryState.Apply(_vcpus[0], boot);
        _log.LogInformation("loaded Linux {Format} (64-bit boot protocol): entry 0x{Entry:x}, initrd {InitrdSize} bytes at 0x{Initrd:x}, " +
            "{Vcpus} vCPU(s), {Mem} MiB, cmdline \"{Cmdline}\"",
            kernel.Format, boot.Entry, boot.InitrdSize, boot.InitrdAddress, _vcpus.Length, Config.MemoryBytes >> 20, EffectiveCommandLine);
    }

    /// <summary>After a triple fault or an emulation failure, the guest's last console lines go to the log next to the
    /// registers and the disassembly: a kernel usually says why before it dies.</summary>
    private void ReportLastConsoleLines()
    {
        if (_exitStatus?.Reason is not (VmStopReason.TripleFault or VmStopReason.EmulationFailure) || _consoleTail is null) return;
        var lines = _consoleTail.LastLines(20);
        if (lines.Count == 0) _log.LogError("the guest printed nothing on its console before it stopped");
        else _log.LogError("last console lines before the stop:\n{Lines}", string.Join('\n', lines.Select(l => "  | " + l)));
    }

    /// <summary>The serial console's sink, also feeding the <see cref="ConsoleTail"/>.</summary>
    private sealed class TailingSink(IByteSink inner, ConsoleTail tail) : IByteSink
    {
        public void Write(ReadOnlySpan<byte> data)
        {
            inner.Write(data);
            tail.Append(data);
        }
    }
}
