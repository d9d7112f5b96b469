using KvmSharp;
using MiniVmm.Tests.Shared;
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
        Skip = HostFeature.SkipUnlessPresent(Need, Reason);
    }

    public const string Need = "userfaultfd WP_ASYNC and PAGEMAP_SCAN";

    public static string Reason { get; } = Probe();

    private static string Probe()
    {
        try
        {
            using var uffd = UserfaultFd.Create(WrittenPageTracker.RequiredFeatures);
            return PageMapScanner.IsSupported(out string? why) ? "" : why!;
        }
        catch (LinuxException e) { return e.Message; }
    }
}

/// <summary>The theory form of <see cref="WpAsyncFactAttribute"/>.</summary>
public sealed class WpAsyncTheoryAttribute : TheoryAttribute
{
    public WpAsyncTheoryAttribute()
    {
        Skip = HostFeature.SkipUnlessPresent(WpAsyncFactAttribute.Need, WpAsyncFactAttribute.Reason);
    }
}
