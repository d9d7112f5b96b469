using KvmSharp;
using MiniVmm.Snapshot.Incremental;

namespace MiniVmm.Snapshot.Tests.Incremental;

/// <summary>
/// A test that needs asynchronous userfaultfd write protection and PAGEMAP_SCAN (Linux 6.7+, root or
/// vm.unprivileged_userfaultfd=1) but no KVM. Skipped with the reason where the host lacks them, never under CI=true.
/// </summary>
public sealed class WpAsyncFactAttribute : FactAttribute
{
    public WpAsyncFactAttribute()
    {
        if (Reason.Length > 0 && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Skip = "needs userfaultfd WP_ASYNC and PAGEMAP_SCAN: " + Reason + "; set CI=true to make this a failure";
    }

    public static string Reason { get; } = Probe();

    private static string Probe()
    {
        try
        {
            using var uffd = UserfaultFd.Create(WrittenPageTracker.RequiredFeatures);
            return PageMapScanner.IsSupported(out string? why) ? "" : why!;
        }
        catch (KvmException e) { return e.Message; }
    }
}

/// <summary>The theory form of <see cref="WpAsyncFactAttribute"/>.</summary>
public sealed class WpAsyncTheoryAttribute : TheoryAttribute
{
    public WpAsyncTheoryAttribute()
    {
        if (WpAsyncFactAttribute.Reason.Length > 0
            && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Skip = "needs userfaultfd WP_ASYNC and PAGEMAP_SCAN: " + WpAsyncFactAttribute.Reason;
    }
}
