using MiniVmm.Devices.Legacy;

namespace MiniVmm.Devices.Tests.Legacy;

public sealed class DebugExitPortTests
{
    private readonly List<uint> _exits = [];
    private readonly DebugExitPort _port;

    public DebugExitPortTests()
    {
        _port = new DebugExitPort(_exits.Add);
    }

    [Fact]
    public void Constants_match_qemu_isa_debug_exit()
    {
        DebugExitPort.DefaultPort.Should().Be(0xF4);
        DebugExitPort.RegisterWindowSize.Should().Be(4ul);
    }

    [Theory]
    [InlineData(new byte[] { 0x2A }, 0x2Au)]
    [InlineData(new byte[] { 0x34, 0x12 }, 0x1234u)]
    [InlineData(new byte[] { 0x78, 0x56, 0x34, 0x12 }, 0x12345678u)]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, 0xFFFFFFFFu)]
    public void Write_of_1_2_or_4_bytes_calls_back_with_the_little_endian_value(byte[] data, uint expected)
    {
        _port.Write(0, data);
        _exits.Should().Equal(expected);
        _port.LastValue.Should().Be(expected);
    }

    [Fact]
    public void Offset_inside_the_window_does_not_matter()
    {
        _port.Write(3, [7]);
        _exits.Should().Equal(7u);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(8)]
    public void Other_widths_are_ignored_and_counted(int width)
    {
        _port.Write(0, new byte[width]);
        _exits.Should().BeEmpty();
        _port.IgnoredWrites.Should().Be(1);
        _port.LastValue.Should().BeNull();
    }

    [Fact]
    public void Reads_return_zero()
    {
        byte[] data = [1, 2, 3, 4];
        _port.Read(0, data);
        data.Should().Equal(0, 0, 0, 0);
    }

    [Fact]
    public void Save_and_restore_round_trip()
    {
        _port.Save().Should().Be(new DebugExitPortState(null));
        _port.Write(0, [0x10, 0]);
        DebugExitPortState saved = _port.Save();
        saved.Should().Be(new DebugExitPortState(0x10));
        DebugExitPort.Restore(saved, _ => { }).Save().Should().Be(saved);
        DebugExitPort.Restore(new DebugExitPortState(uint.MaxValue), _ => { }).LastValue.Should().Be(uint.MaxValue);
    }

    [Fact]
    public void Restore_rejects_null_state()
    {
        Action restore = () => DebugExitPort.Restore(null!, _ => { });
        restore.Should().Throw<ArgumentNullException>();
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public void Random_accesses_never_throw_and_only_valid_widths_exit(int seed)
    {
        var random = new Random(seed);
        byte[] buffer = new byte[8];
        int expectedExits = 0;
        for (int i = 0; i < 10_000; i++)
        {
            ulong offset = random.Next(2) == 0 ? (ulong)random.Next(4) : (ulong)random.NextInt64();
            Span<byte> data = buffer.AsSpan(0, random.Next(9));
            if (random.Next(2) == 0)
            {
                _port.Read(offset, data);
                data.IndexOfAnyExcept((byte)0).Should().Be(-1);
            }
            else
            {
                random.NextBytes(data);
                _port.Write(offset, data);
                if (data.Length is 1 or 2 or 4)
                    expectedExits++;
            }
        }
        _exits.Should().HaveCount(expectedExits);
        (_exits.Count + _port.IgnoredWrites).Should().BeGreaterThan(0);
    }
}
