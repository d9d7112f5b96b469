namespace MiniVmm.Tests.Shared;

/// <summary>
/// Whether KVM on this host runs guest kernel code in hardware (Intel VMX or AMD SVM, kvm_intel/kvm_amd loaded), as
/// opposed to a KVM that emulates kernel mode (kvm_pvm), where a stock kernel needs minutes and stops at an
/// instruction the emulator lacks.
/// </summary>
public static class HardwareVirtualization
{
    public static string Reason { get; } = Probe();

    public static bool IsPresent => Reason.Length == 0;

    private static string Probe()
    {
        string flags = File.Exists("/proc/cpuinfo")
            ? string.Join(' ', File.ReadLines("/proc/cpuinfo").Where(l => l.StartsWith("flags", StringComparison.Ordinal)).Take(1))
            : "";
        bool cpu = flags.Split(' ').Any(f => f is "vmx" or "svm");
        bool module = Directory.Exists("/sys/module/kvm_intel") || Directory.Exists("/sys/module/kvm_amd");
        if (cpu && module) return "";
        string kvm = Directory.Exists("/sys/module/kvm_pvm") ? "KVM here is kvm_pvm, which emulates guest kernel mode" : "no kvm_intel/kvm_amd module";
        return cpu ? kvm : $"the CPU shows no vmx/svm flag ({kvm})";
    }
}

/// <summary>
/// A test that only means something with hardware virtualization: booting an unpatched distribution kernel. It is an
/// extra on such hosts, not a requirement of the test machine, so it is skipped (with the reason in the summary) even
/// under CI=true; every kernel-boot behaviour it checks is also checked on the patched test guest everywhere.
/// </summary>
public sealed class HardwareVirtualizationFactAttribute : FactAttribute
{
    public HardwareVirtualizationFactAttribute()
    {
        if (!HardwareVirtualization.IsPresent)
            Skip = "needs VMX or SVM: " + HardwareVirtualization.Reason;
    }
}
