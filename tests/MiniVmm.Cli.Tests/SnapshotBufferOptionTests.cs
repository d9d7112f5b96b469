using static MiniVmm.Cli.Tests.SnapshotPlans;

namespace MiniVmm.Cli.Tests;

/// <summary>--snapshot-buffer: a size (plain numbers are MiB) within the engine's bounds, for write tracking only.</summary>
public sealed class SnapshotBufferOptionTests
{
    [Theory]
    [InlineData(null, 16L << 20)]
    [InlineData("64M", 64L << 20)]
    [InlineData("256", 256L << 20)]
    [InlineData("1G", 1L << 30)]
    [InlineData("10M", 10L << 20)]
    public void A_size_becomes_the_fault_buffer_budget(string? value, long bytes)
    {
        var (ok, options, error) = value is null ? Plan() : Plan("--snapshot-buffer", value);
        ok.Should().BeTrue(error);
        options!.FaultBufferBytes.Should().Be(bytes);
    }

    [Theory]
    [InlineData("9M", "outside 10 MiB..64 GiB")]
    [InlineData("65G", "outside 10 MiB..64 GiB")]
    [InlineData("lots", "--snapshot-buffer:")]
    public void A_size_out_of_bounds_or_unreadable_is_a_usage_error(string value, string message)
    {
        var (ok, _, error) = Plan("--snapshot-buffer", value);
        ok.Should().BeFalse();
        error.Should().Contain(message);
    }

    [Fact]
    public void The_reference_engines_have_no_fault_buffer()
    {
        var (ok, _, error) = Plan("--snapshot-mode", "stop-copy", "--snapshot-buffer", "64M");
        ok.Should().BeFalse();
        error.Should().Contain("only applies to --snapshot-mode write-tracking");
    }
}
