using KvmSharp;
using MiniVmm.Devices.Virtio.Net;
using MiniVmm.Machine.Devices;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>A test on a tap it creates (root, /dev/net/tun, iproute2); no KVM needed.</summary>
public sealed class TapFactAttribute : FactAttribute
{
    public TapFactAttribute() => Skip = HostFeature.SkipUnlessPresent("a tap interface", TestTap.Reason);
}

/// <summary>virtio-net's tap backend on a real tap: what it opens, and how it reports a tap that went away.</summary>
public sealed class TapNetBackendTests
{
    private static int OpenFds() => Directory.GetFiles("/proc/self/fd").Length;

    [TapFact]
    public void Only_a_watched_backend_opens_an_epoll_and_an_eventfd_and_dispose_closes_all()
    {
        using var tap = new TestTap();
        int before = OpenFds();
        using (var unwatched = new TapNetBackend(TapDevice.Open(tap.Name), watch: false))
        {
            unwatched.Watchable.Should().BeFalse();
            OpenFds().Should().Be(before + 1, "the tap's fd only: the doorbell watches it");
        }
        OpenFds().Should().Be(before);
        using (var watched = new TapNetBackend(TapDevice.Open(tap.Name), watch: true))
        {
            watched.Watchable.Should().BeTrue();
            OpenFds().Should().Be(before + 3, "the tap, its epoll and the eventfd that ends the wait");
            watched.Close();
            watched.WaitReadable().Should().BeFalse("a closed backend's wait ends");
        }
        OpenFds().Should().Be(before);
    }

    [TapFact]
    public void A_tap_deleted_under_the_backend_is_dead_not_a_dropped_frame()
    {
        var tap = new TestTap();
        using var backend = new TapNetBackend(TapDevice.Open(tap.Name), watch: false);
        var frame = new byte[12 + 60];
        backend.TryRead(new byte[2048]).Should().Be(-1, "nothing arrived yet");
        tap.Dispose(); // ip link del: the fd stays open, its interface is gone
        var write = () => backend.TryWrite(frame);
        write.Should().Throw<NetBackendDeadException>().WithMessage($"*{tap.Name}*");
        var read = () => backend.TryRead(new byte[2048]);
        read.Should().Throw<NetBackendDeadException>();
    }
}
