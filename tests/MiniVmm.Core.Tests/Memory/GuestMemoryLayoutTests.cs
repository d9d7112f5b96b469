using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Tests.Memory;

public sealed class GuestMemoryLayoutTests
{
    private const ulong GiB = 1UL << 30;

    [Fact]
    public void Ram_that_fits_below_the_mmio_hole_is_one_range_from_zero()
    {
        GuestMemoryLayout.RamRanges(256UL << 20).Should().Equal((0UL, 256UL << 20));
        GuestMemoryLayout.RamRanges(3 * GiB).Should().Equal((0UL, 3 * GiB));
    }

    [Fact]
    public void Ram_beyond_3_GiB_continues_from_4_GiB()
    {
        GuestMemoryLayout.RamRanges(3 * GiB + 4096).Should().Equal((0UL, 3 * GiB), (4 * GiB, 4096UL));
        GuestMemoryLayout.RamRanges(16 * GiB).Should().Equal((0UL, 3 * GiB), (4 * GiB, 13 * GiB));
    }

    [Fact]
    public void A_layout_matches_only_its_own_size()
    {
        GuestMemoryLayout.Matches([(0UL, 3 * GiB), (4 * GiB, GiB)], 4 * GiB).Should().BeTrue();
        GuestMemoryLayout.Matches([(0UL, 4 * GiB)], 4 * GiB).Should().BeFalse("RAM in the MMIO hole is not this layout");
        GuestMemoryLayout.Matches([(0UL, 3 * GiB), (4 * GiB, GiB)], 5 * GiB).Should().BeFalse();
        GuestMemoryLayout.Matches([(4 * GiB, GiB), (0UL, 3 * GiB)], 4 * GiB).Should().BeFalse("regions come in address order");
    }

    [Fact]
    public void Anonymous_memory_of_more_than_3_GiB_has_two_regions_and_nothing_in_the_hole()
    {
        using var memory = GuestMemory.CreateAnonymous(5 * GiB); // nothing is touched, so nothing is allocated
        memory.Regions.Select(r => (r.GuestAddress.Value, r.Size)).Should().Equal((0UL, 3 * GiB), (4 * GiB, 2 * GiB));
        memory.Regions.Select(r => r.Index).Should().Equal(0, 1);
        memory.Size.Should().Be(5 * GiB);
        memory.Contains(new GuestAddress(3 * GiB - 4096), 4096).Should().BeTrue();
        memory.Contains(new GuestAddress(3 * GiB), 1).Should().BeFalse("the MMIO hole holds no RAM");
        memory.Contains(new GuestAddress(3 * GiB - 8), 16).Should().BeFalse("an access may not run from RAM into the hole");
        memory.Write<ulong>(new GuestAddress(6 * GiB - 8), 0x1122334455667788);
        memory.Read<ulong>(new GuestAddress(6 * GiB - 8)).Should().Be(0x1122334455667788);
        FluentActions.Invoking(() => memory.Read<ulong>(new GuestAddress(6 * GiB))).Should().Throw<GuestMemoryException>();
        FluentActions.Invoking(() => memory.Write<byte>(new GuestAddress(3 * GiB + 12345), 1)).Should().Throw<GuestMemoryException>();
    }
}
