using MiniVmm.Devices.Virtio;
using P = MiniVmm.Devices.Virtio.Net.VirtioNetProtocol;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>One worker serves both queues: a receive flood must not hold transmit back.</summary>
public sealed class VirtioNetFairnessTests
{
    [Fact]
    public void Transmit_is_served_within_one_budget_of_a_receive_flood()
    {
        const int Received = 200, Sent = 10;
        using var rig = new NetRig(startPaused: true, rxSize: 256);
        rig.BringUp();
        // Everything is queued before the device runs, so the order it serves them in is its own choice.
        for (int i = 0; i < Received; i++)
        {
            rig.Rx.AddChain((rig.Rx.Allocate(128), 128, true));
            rig.Backend.Inject(NetRig.FrameWithHeader(60, (byte)i));
        }
        for (int i = 0; i < Sent; i++)
        {
            var frame = NetRig.FrameWithHeader(60, (byte)i);
            rig.Tx.AddChain((rig.Tx.AllocateWith(frame), (uint)frame.Length, false));
        }
        rig.Net.Resume();

        rig.Rx.WaitUsed(Received).Should().BeTrue();
        rig.Tx.WaitUsed(Sent).Should().BeTrue();
        var operations = rig.Backend.Operations.ToArray();
        operations.Count(o => o == 'R').Should().Be(Received);
        operations.Count(o => o == 'W').Should().Be(Sent);
        Array.IndexOf(operations, 'W').Should().BeLessThan(Received, "transmit does not wait for the receive flood to end")
            .And.BeLessThanOrEqualTo(VirtioDevice.QueueBudget, "receive gets at most one budget before transmit's turn");
        rig.Net.Counters.TxFrames.Should().Be(Sent);
        rig.Net.Counters.RxFrames.Should().Be(Received);
        rig.Rx.Used(Received - 1).Length.Should().Be((uint)(P.HeaderSize + 60));
    }
}
