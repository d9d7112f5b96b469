using MiniVmm.Devices.Legacy;

namespace MiniVmm.Devices.Tests.Legacy;

public sealed class I8042Tests
{
    private int _resets;
    private readonly I8042 _i8042;

    public I8042Tests()
    {
        _i8042 = new I8042(() => _resets++);
    }

    private byte In(ulong offset)
    {
        Span<byte> b = stackalloc byte[1];
        _i8042.Read(offset, b);
        return b[0];
    }

    [Fact]
    public void Window_covers_ports_0x60_to_0x64()
    {
        I8042.DefaultPort.Should().Be(0x60);
        I8042.RegisterWindowSize.Should().Be(5ul);
    }

    [Fact]
    public void Pulse_reset_command_calls_back()
    {
        _i8042.Write(4, [0xFE]);
        _resets.Should().Be(1);
        _i8042.ResetRequests.Should().Be(1);
    }

    [Theory]
    [InlineData(4ul, 0xFF)]
    [InlineData(4ul, 0xAA)]
    [InlineData(4ul, 0xD1)]
    [InlineData(0ul, 0xFE)]
    [InlineData(1ul, 0xFE)]
    public void Other_writes_are_ignored(ulong offset, byte value)
    {
        _i8042.Write(offset, [value]);
        _resets.Should().Be(0);
        _i8042.IgnoredWrites.Should().Be(1);
    }

    [Fact]
    public void Status_reads_show_no_data_and_empty_input_buffer()
    {
        byte status = In(4);
        status.Should().Be(I8042.StatusNoData);
        (status & 0x03).Should().Be(0, "output and input buffers are empty");
        (status & 0x04).Should().NotBe(0, "the system flag is set");
    }

    [Fact]
    public void Data_port_and_port_b_read_zero()
    {
        In(0).Should().Be(0);
        In(1).Should().Be(0);
        In(2).Should().Be(0);
        In(3).Should().Be(0);
    }

    [Fact]
    public void Wide_accesses_are_split_into_byte_ports()
    {
        byte[] data = new byte[2];
        _i8042.Read(3, data);
        data.Should().Equal(0, I8042.StatusNoData);
        _i8042.Write(3, [0x00, 0xFE]);
        _resets.Should().Be(1);
    }

    [Fact]
    public void Save_and_restore_round_trip()
    {
        I8042State state = _i8042.Save();
        state.Should().Be(new I8042State());
        int restoredResets = 0;
        I8042 restored = I8042.Restore(state, () => restoredResets++);
        restored.Write(4, [0xFE]);
        restoredResets.Should().Be(1);
    }

    [Fact]
    public void Restore_rejects_null_state()
    {
        Action restore = () => I8042.Restore(null!, () => { });
        restore.Should().Throw<ArgumentNullException>();
    }

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    public void Random_accesses_never_throw_and_reset_only_on_0xfe_at_the_command_port(int seed)
    {
        var random = new Random(seed);
        byte[] buffer = new byte[8];
        int expectedResets = 0;
        for (int i = 0; i < 10_000; i++)
        {
            ulong offset = random.Next(4) == 0 ? (ulong)random.NextInt64() : (ulong)random.Next(6);
            Span<byte> data = buffer.AsSpan(0, random.Next(9));
            if (random.Next(2) == 0)
            {
                _i8042.Read(offset, data);
                for (int b = 0; b < data.Length; b++)
                    data[b].Should().Be(offset + (ulong)b == 4 ? I8042.StatusNoData : (byte)0);
            }
            else
            {
                random.NextBytes(data);
                if (random.Next(4) == 0 && offset <= 4 && (int)(4 - offset) < data.Length)
                    data[(int)(4 - offset)] = 0xFE;
                _i8042.Write(offset, data);
                for (int b = 0; b < data.Length; b++)
                {
                    if (offset + (ulong)b == 4 && data[b] == 0xFE)
                        expectedResets++;
                }
            }
        }
        _resets.Should().Be(expectedResets);
        expectedResets.Should().BeGreaterThan(0);
    }
}
