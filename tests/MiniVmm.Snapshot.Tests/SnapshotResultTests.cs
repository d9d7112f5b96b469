using System.Text.RegularExpressions;
using FluentAssertions;
using Xunit;

namespace MiniVmm.Snapshot.Tests;

public class SnapshotResultTests
{
    // A large, slow incremental link: the longest line write-tracking can print.
    private static readonly SnapshotResult Worst = new()
    {
        Engine = "write-tracking", Succeeded = true, PagesSaved = 6_291_456, ZeroPages = 12_000_000,
        BytesWritten = 25_769_803_776, FaultsServed = 1_234_567, Downtime = TimeSpan.FromMilliseconds(123.456),
        DowntimeBreakdown = "pause 1.00 ms, capture 2.00 ms, take-over 3.00 ms, protect 4.00 ms",
        WriteTime = TimeSpan.FromSeconds(1234), TotalTime = TimeSpan.FromSeconds(1235), FsyncTime = TimeSpan.FromSeconds(1),
        ProtectedWindow = TimeSpan.FromSeconds(1234), FaultStallP50 = TimeSpan.FromMicroseconds(12),
        FaultStallP99 = TimeSpan.FromMicroseconds(3400), FaultStallMax = TimeSpan.FromMilliseconds(90),
        Incremental = true, ChangedPages = 6_291_456,
        HandoverPause = TimeSpan.FromMilliseconds(20),
    };

    // ... and the longest dirty-log can print.
    private static readonly SnapshotResult Unconverged = Worst with
    {
        Engine = "dirty-log",
        Incremental = false,
        ChangedPages = 0,
        Iterations = 30,
        Converged = false,
    };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_summary_line_is_short_and_uses_one_unit_per_quantity(bool incremental)
    {
        string line = "minivmm: " + (incremental ? Worst : Unconverged).Summary();
        line.Length.Should().BeLessThanOrEqualTo(170, line);
        // Sizes in MiB and times in ms only: no bare byte counts, seconds or microseconds.
        Regex.Matches(line, @"\d(?:\.\d+)? (\w+)").Select(m => m.Groups[1].Value).Distinct()
            .Should().BeSubsetOf(["pages", "MiB", "ms", "changed", "iterations"], line);
        line.Should().Contain("6291456 pages saved (24576.0 MiB)").And.Contain("downtime 123 ms")
            .And.Contain("protected window 1234000 ms");
        line.Should().Contain(incremental ? "incremental: 6291456 changed pages" : "did not converge in 30 iterations");
    }

    [Fact]
    public void A_typical_line_fits_a_terminal()
    {
        var typical = Worst with
        {
            PagesSaved = 16411,
            BytesWritten = 16411L * 4096,
            Downtime = TimeSpan.FromMicroseconds(530),
            ProtectedWindow = TimeSpan.FromMilliseconds(106),
            TotalTime = TimeSpan.FromMilliseconds(231),
            Incremental = false,
        };
        string line = "minivmm: " + typical.Summary();
        line.Should().Be("minivmm: snapshot (write-tracking): 16411 pages saved (64.1 MiB), downtime 0.53 ms, " +
                         "protected window 106 ms, total 231 ms");
    }

    [Fact]
    public void Short_times_keep_their_significant_digits()
    {
        (Worst with { Downtime = TimeSpan.FromMicroseconds(531) }).Summary().Should().Contain("downtime 0.53 ms");
        (Worst with { Downtime = TimeSpan.FromMilliseconds(23.44) }).Summary().Should().Contain("downtime 23.4 ms");
    }

    [Fact]
    public void The_details_keep_every_figure_the_summary_leaves_out()
    {
        string details = Worst.Details();
        details.Should().Contain("25769803776 bytes").And.Contain("12000000 zero pages skipped")
            .And.Contain("1234567 faults served").And.Contain("take-over 3.00 ms").And.Contain("fsync 1000.00 ms")
            .And.Contain("p99 3400 us").And.Contain("max 90000 us").And.Contain("tracking handover 20.00 ms");
    }

    [Fact]
    public void A_converged_full_snapshot_has_no_optional_parts()
    {
        var plain = Worst with { Iterations = 0, Converged = true, Incremental = false, ChangedPages = 0 };
        plain.Summary().Should().NotContain("converge").And.NotContain("incremental");
    }
}
