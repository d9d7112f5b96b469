using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Tests.Memory;

public sealed class GuestAddressTests
{
    [Fact]
    public void Arithmetic_pages_and_alignment_follow_the_number()
    {
        var a = new GuestAddress(0x12345);
        (a + 0x10).Should().Be(new GuestAddress(0x12355));
        (a - 0x45).Should().Be(new GuestAddress(0x12300));
        (new GuestAddress(0x13000) - a).Should().Be(0xcbbUL);
        a.PageNumber.Should().Be(0x12UL);
        a.PageStart.Should().Be(new GuestAddress(0x12000));
        GuestAddress.OfPage(0x12).Should().Be(new GuestAddress(0x12000));
        a.IsAligned(4).Should().BeFalse();
        a.PageStart.IsAligned(GuestMemory.PageSize).Should().BeTrue();
        (a < a + 1).Should().BeTrue();
    }

    [Fact]
    public void It_prints_as_hex_and_a_format_applies_to_the_number()
    {
        var a = new GuestAddress(0xd000_0000);
        a.ToString().Should().Be("0xd0000000");
        $"{a}".Should().Be("0xd0000000");
        $"0x{a:x}".Should().Be("0xd0000000");
        $"{a:x16}".Should().Be("00000000d0000000");
    }

    [Fact]
    public void An_address_that_wraps_past_the_top_is_refused_by_guest_memory_not_folded_into_ram()
    {
        using var memory = GuestMemory.CreateAnonymous(1 << 20);
        var top = new GuestAddress(ulong.MaxValue - 0xfff);
        memory.Contains(top, 0x2000).Should().BeFalse();
        (top + 0x2000).Should().Be(new GuestAddress(0x1000), "arithmetic wraps like ulong");
        FluentActions.Invoking(() => memory.Write(top, new byte[0x2000])).Should().Throw<GuestMemoryException>();
    }
}
