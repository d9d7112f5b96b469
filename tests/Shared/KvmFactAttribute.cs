namespace MiniVmm.Tests.Shared;

/// <summary>
/// A test that needs /dev/kvm (and userfaultfd). Skipped with a reason on a machine without KVM; under CI=true it is
/// never skipped, so a broken CI machine fails loudly instead of passing by skipping.
/// </summary>
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (!KvmAvailability.IsAvailable && !KvmAvailability.IsCi)
            Skip = "needs /dev/kvm read-write access (" + KvmAvailability.Reason + "); set CI=true to make this a failure";
    }
}

/// <summary>A theory that needs /dev/kvm; same skip rules as <see cref="KvmFactAttribute"/>.</summary>
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (!KvmAvailability.IsAvailable && !KvmAvailability.IsCi)
            Skip = "needs /dev/kvm read-write access (" + KvmAvailability.Reason + "); set CI=true to make this a failure";
    }
}

public static class KvmAvailability
{
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static string Reason { get; } = Probe();

    public static bool IsAvailable => Reason.Length == 0;

    private static string Probe()
    {
        if (!File.Exists("/dev/kvm")) return "/dev/kvm does not exist";
        try
        {
            using var f = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            return "";
        }
        catch (Exception e) { return e.Message; }
    }
}
