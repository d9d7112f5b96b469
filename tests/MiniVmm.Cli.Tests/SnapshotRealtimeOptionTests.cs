using static MiniVmm.Cli.Tests.SnapshotPlans;

namespace MiniVmm.Cli.Tests;

/// <summary>--snapshot-realtime-faults: off unless asked for, and only for write tracking (the only engine with a fault thread).</summary>
public sealed class SnapshotRealtimeOptionTests
{
    [Fact]
    public void The_fault_thread_is_a_normal_one_unless_asked()
    {
        Plan().Options!.RealtimeFaultThread.Should().BeFalse();
        var (ok, options, error) = Plan("--snapshot-realtime-faults");
        ok.Should().BeTrue(error);
        options!.RealtimeFaultThread.Should().BeTrue();
    }

    [Fact]
    public void The_reference_engines_have_no_fault_thread()
    {
        var (ok, _, error) = Plan("--snapshot-mode", "dirty-log", "--snapshot-realtime-faults");
        ok.Should().BeFalse();
        error.Should().Contain("only applies to --snapshot-mode write-tracking");
    }
}
