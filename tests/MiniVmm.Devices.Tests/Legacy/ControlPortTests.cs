using MiniVmm.Devices.Legacy;

namespace MiniVmm.Devices.Tests.Legacy;

public sealed class ControlPortTests
{
    private int _requests;
    private readonly ControlPort _port;

    public ControlPortTests()
    {
        _port = new ControlPort(() => _requests++);
    }

    [Fact]
    public void Constants_define_the_protocol()
    {
        ControlPort.DefaultPort.Should().Be(0x520);
        ControlPort.RegisterWindowSize.Should().Be(4ul);
        ControlPort.CommandRequestSnapshot.Should().Be(1u);
    }

    [Theory]
    [InlineData(new byte[] { 1, 0, 0, 0 })]
    [InlineData(new byte[] { 1, 0 })]
    [InlineData(new byte[] { 1 })]   // a Linux guest's /dev/port write: one outb per byte
    public void Writing_1_at_offset_0_as_8_16_or_32_bits_requests_a_snapshot(byte[] data)
    {
        _port.Write(0, data);
        _requests.Should().Be(1);
        _port.SnapshotRequests.Should().Be(1);
        _port.IgnoredWrites.Should().Be(0);
    }

    [Theory]
    [InlineData(0ul, new byte[] { 2, 0, 0, 0 })]
    [InlineData(0ul, new byte[] { 1, 0, 0, 1 })]
    [InlineData(0ul, new byte[] { 2 })]
    [InlineData(0ul, new byte[] { 1, 1 })]
    [InlineData(0ul, new byte[] { 1, 0, 0 })]
    [InlineData(0ul, new byte[] { 1, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(1ul, new byte[] { 1 })]
    public void Other_writes_are_ignored_and_counted(ulong offset, byte[] data)
    {
        _port.Write(offset, data);
        _requests.Should().Be(0);
        _port.IgnoredWrites.Should().Be(1);
    }

    [Fact]
    public void Reads_return_the_status_the_vmm_set()
    {
        byte[] word = new byte[4];
        _port.Read(0, word);
        word.Should().Equal(0, 0, 0, 0);

        _port.SetStatus(0x11223344);
        _port.Read(0, word);
        word.Should().Equal(0x44, 0x33, 0x22, 0x11);

        byte[] two = new byte[2];
        _port.Read(2, two);
        two.Should().Equal(0x22, 0x11);
        _port.Read(3, two);
        two.Should().Equal(0x11, 0x00);
        _port.Read(ulong.MaxValue, two);
        two.Should().Equal(0, 0);
    }

    [Fact]
    public void Save_and_restore_round_trip()
    {
        _port.SetStatus(42);
        ControlPortState state = _port.Save();
        state.Should().Be(new ControlPortState(42));
        ControlPort restored = ControlPort.Restore(state, () => { });
        restored.Status.Should().Be(42u);
        restored.Save().Should().Be(state);
    }

    [Fact]
    public void Restore_rejects_null_state()
    {
        Action restore = () => ControlPort.Restore(null!, () => { });
        restore.Should().Throw<ArgumentNullException>();
    }

    [Theory]
    [InlineData(31)]
    [InlineData(32)]
    public void Random_accesses_never_throw_and_only_the_exact_command_acts(int seed)
    {
        var random = new Random(seed);
        byte[] buffer = new byte[8];
        int expected = 0, writes = 0;
        _port.SetStatus(0xA1B2C3D4);
        for (int i = 0; i < 10_000; i++)
        {
            ulong offset = random.Next(3) == 0 ? (ulong)random.NextInt64() : (ulong)random.Next(5);
            Span<byte> data = buffer.AsSpan(0, random.Next(9));
            if (random.Next(2) == 0)
            {
                _port.Read(offset, data);
                for (int b = 0; b < data.Length; b++)
                {
                    ulong at = offset + (ulong)b;
                    byte want = offset < 4 && at < 4 ? (byte)(0xA1B2C3D4u >> (int)(8 * at)) : (byte)0;
                    data[b].Should().Be(want);
                }
            }
            else
            {
                random.NextBytes(data);
                if (random.Next(3) == 0 && data.Length == 4)
                    data.Clear();
                if (random.Next(2) == 0 && data.Length == 4)
                    data[0] = 1;
                writes++;
                _port.Write(offset, data);
                bool one = data.Length is 1 or 2 or 4 && data[0] == 1;
                for (int b = 1; b < data.Length; b++) one &= data[b] == 0;
                if (offset == 0 && one) expected++;
            }
        }
        _requests.Should().Be(expected);
        (_port.SnapshotRequests + _port.IgnoredWrites).Should().Be(writes);
    }
}
