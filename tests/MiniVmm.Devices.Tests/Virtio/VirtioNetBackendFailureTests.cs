using MiniVmm.Devices.Virtio.Net;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>Host-side failures: a frame the backend cannot take costs that frame; a dead backend stops the device
/// (DEVICE_NEEDS_RESET, logged once), never the process.</summary>
public sealed class VirtioNetBackendFailureTests
{
    private static int NeedsResetWarnings(NetRig rig) => rig.Log.Warnings.Count(w => w.Contains("needs reset", StringComparison.Ordinal));

    [Fact]
    public void A_frame_the_backend_refuses_is_dropped_and_the_next_one_is_sent()
    {
        using var rig = new NetRig();
        rig.BringUp();
        rig.Backend.WriteFailure = new IOException("write(tap) failed: Invalid argument");
        rig.Transmit(NetRig.FrameWithHeader(60, 1));
        rig.Tx.WaitUsed(1).Should().BeTrue();
        rig.Backend.WriteFailure = null;
        rig.Transmit(NetRig.FrameWithHeader(60, 2));
        rig.Tx.WaitUsed(2).Should().BeTrue();
        rig.Net.Counters.TxDropped.Should().Be(1);
        rig.Backend.Sent.Should().ContainSingle();
        rig.NeedsReset.Should().BeFalse();
    }

    [Fact]
    public void A_backend_dead_on_transmit_sets_needs_reset_and_logs_it_once()
    {
        using var rig = new NetRig();
        rig.BringUp();
        rig.Backend.WriteFailure = new NetBackendDeadException("tap 'tap0' failed for good: File descriptor in bad state");
        rig.Transmit(NetRig.FrameWithHeader(60, 1));
        NetRig.Eventually(() => rig.NeedsReset).Should().BeTrue();
        for (int i = 0; i < 5; i++) rig.Transmit(NetRig.FrameWithHeader(60, 2));
        Thread.Sleep(50); // give a wrong implementation the chance to log again
        NeedsResetWarnings(rig).Should().Be(1);
        rig.Log.Warnings.Single(w => w.Contains("needs reset", StringComparison.Ordinal)).Should().Contain("failed for good");
        rig.Backend.Sent.Should().BeEmpty();
    }

    [Fact]
    public void A_backend_dead_on_receive_sets_needs_reset()
    {
        using var rig = new NetRig();
        rig.BringUp();
        rig.Rx.AddChain((rig.Rx.Allocate(1526), 1526, true));
        rig.Backend.ReadFailure = new NetBackendDeadException("tap 'tap0' failed for good");
        rig.Backend.Inject(NetRig.FrameWithHeader(60, 1));
        NetRig.Eventually(() => rig.NeedsReset).Should().BeTrue();
        NeedsResetWarnings(rig).Should().Be(1);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_watcher_whose_wait_fails_stops_the_device_not_the_process(bool dead)
    {
        // Without the fix the exception ends the watcher thread unhandled, and with it the test host.
        using var rig = new NetRig();
        rig.BringUp();
        rig.Backend.FailWaits(dead ? new NetBackendDeadException("tap 'tap0' failed for good") : new InvalidOperationException("epoll is gone"));
        NetRig.Eventually(() => rig.NeedsReset).Should().BeTrue();
        NeedsResetWarnings(rig).Should().Be(1);
        rig.Log.Warnings.Should().Contain(w => w.Contains(dead ? "failed for good" : "epoll is gone", StringComparison.Ordinal));
    }
}
