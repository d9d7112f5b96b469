using System.Collections.Immutable;
using MiniVmm.Devices.Virtio.Mmio;

namespace MiniVmm.Devices.Tests.Virtio;

public sealed class VirtioMmioStateTests
{
    private static readonly VirtioMmioState Sample = new(2, 0xf, false, 0x1_3000_0244, 1, 1, 0, 1, 3,
        [new VirtioQueueState(128, true, 0x1000, 0x3000, 0x4000, 65535, 65530)], ImmutableArray.Create<byte>(1, 2, 3));

    [Fact]
    public void Encoding_round_trips()
    {
        var decoded = VirtioMmioState.Decode("t", Sample.Encode());
        decoded.Should().BeEquivalentTo(Sample);
        decoded.DeviceConfig.Should().Equal(1, 2, 3);
    }

    [Fact]
    public void Truncated_extended_or_flag_corrupted_bytes_are_refused()
    {
        var bytes = Sample.Encode();
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var act = () => VirtioMmioState.Decode("t", bytes.AsSpan(0, cut));
            act.Should().Throw<DeviceStateException>($"{cut} of {bytes.Length} bytes");
        }
        var longer = () => VirtioMmioState.Decode("t", [.. bytes, 0]);
        longer.Should().Throw<DeviceStateException>();
        var flag = (byte[])bytes.Clone();
        flag[8] = 2;
        var badFlag = () => VirtioMmioState.Decode("t", flag);
        badFlag.Should().Throw<DeviceStateException>().WithMessage("*needs-reset*");
        var many = (byte[])bytes.Clone();
        many[37] = 0xff;
        many[38] = 0xff;
        var tooMany = () => VirtioMmioState.Decode("t", many);
        tooMany.Should().Throw<DeviceStateException>().WithMessage("*queues*");
    }
}
