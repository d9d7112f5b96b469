namespace MiniVmm.Integration.Tests;

/// <summary>
/// The Linux test guest that <c>make linux-guest</c> builds into out/linux-guest (README "Linux test guest"): a
/// tinyconfig kernel and a busybox initramfs whose /init runs the checks named by <c>selftest=</c> and exits through
/// the debug-exit port with 0 (passed), 1 (a check failed) or 2 (an unknown check).
/// </summary>
public static class LinuxGuest
{
    /// <summary>The workarounds this host's kernel-mode emulator needs (README "Linux test guest"): no XSAVE, no
    /// CMPXCHG16B/SMAP/POPCNT, no PCI probing, no port-0x80 delays; quiet keeps the emulated console driver's work
    /// to warnings.</summary>
    public const string BaseCmdline = "panic=-1 pci=off io_delay=none noxsave clearcpuid=cx16,smap,popcnt quiet";

    /// <summary>A hang guard, not a timed assertion: a boot runs its kernel code through KVM's emulator here, about
    /// 2.5 minutes on an idle 2-core machine, and more than 8 minutes was seen on a shared one.</summary>
    public static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(15);

    private static readonly Lazy<string> Dir = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MiniVmm.sln"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException("cannot find the repository root from " + AppContext.BaseDirectory);
        string guest = Path.Combine(dir.FullName, "out", "linux-guest");
        foreach (string file in new[] { "vmlinux", "initramfs.cpio" })
            if (!File.Exists(Path.Combine(guest, file)))
                throw new InvalidOperationException($"{Path.Combine(guest, file)} is missing: build the Linux test guest first (make linux-guest; make test does)");
        return guest;
    });

    public static string Kernel => Path.Combine(Dir.Value, "vmlinux");
    public static string Initrd => Path.Combine(Dir.Value, "initramfs.cpio");

    /// <summary>Boots the guest with <c>selftest=<paramref name="checks"/></c> and the extra run options.</summary>
    public static MinivmmProcess.Result Run(string checks, params string[] options) =>
        MinivmmProcess.Run(BootTimeout,
            ["run", "--kernel", Kernel, "--initrd", Initrd, "--mem", "256M", "--cmdline", $"{BaseCmdline} selftest={checks}", .. options]);
}
