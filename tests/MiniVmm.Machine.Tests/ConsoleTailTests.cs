using System.Text;
using FluentAssertions;
using MiniVmm.Machine.Diagnostics;

namespace MiniVmm.Machine.Tests;

public sealed class ConsoleTailTests
{
    [Fact]
    public void The_last_lines_are_kept()
    {
        var tail = new ConsoleTail();
        tail.LastLines(5).Should().BeEmpty();
        for (int i = 0; i < 1000; i++)
            tail.Append(Encoding.ASCII.GetBytes($"line {i}\r\n"));
        tail.Append("Kernel panic\x07 - not syncing"u8);
        tail.LastLines(3).Should().Equal("line 998", "line 999", "Kernel panic. - not syncing");
    }

    [Fact]
    public void A_write_larger_than_the_ring_keeps_its_end()
    {
        var tail = new ConsoleTail();
        tail.Append(Encoding.ASCII.GetBytes(new string('a', ConsoleTail.Capacity * 2) + "\nlast\n"));
        tail.LastLines(1).Should().Equal("last");
    }
}
