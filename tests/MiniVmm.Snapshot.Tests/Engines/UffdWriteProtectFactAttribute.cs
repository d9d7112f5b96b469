using KvmSharp;
using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>
/// A test that needs userfaultfd write protection of anonymous memory (Linux 6.4+, root or
/// vm.unprivileged_userfaultfd=1) but no KVM. Skipped with the reason where the host lacks it, never under CI=true.
/// </summary>
public sealed class UffdWriteProtectFactAttribute : FactAttribute
{
    public UffdWriteProtectFactAttribute()
    {
        if (Reason.Length > 0 && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Skip = "needs userfaultfd write protection: " + Reason + "; set CI=true to make this a failure";
    }

    public static string Reason { get; } = Probe();

    private static string Probe()
    {
        try
        {
            using var uffd = UserfaultFd.Create(WriteTrackingEngine.RequiredFeatures);
            return "";
        }
        catch (LinuxException e) { return e.Message; }
    }
}

/// <summary>The theory form of <see cref="UffdWriteProtectFactAttribute"/>.</summary>
public sealed class UffdWriteProtectTheoryAttribute : TheoryAttribute
{
    public UffdWriteProtectTheoryAttribute()
    {
        if (UffdWriteProtectFactAttribute.Reason.Length > 0
            && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Skip = "needs userfaultfd write protection: " + UffdWriteProtectFactAttribute.Reason;
    }
}
