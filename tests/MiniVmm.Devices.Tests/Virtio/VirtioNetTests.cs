using System.Buffers.Binary;
using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio;
using MiniVmm.Devices.Virtio.Mmio;
using MiniVmm.Devices.Virtio.Net;
using MiniVmm.Devices.Virtio.Queue;
using P = MiniVmm.Devices.Virtio.Net.VirtioNetProtocol;
using R = MiniVmm.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>virtio-net behind virtio-mmio, driven by the mock driver: receive queue 0 at the first queue area,
/// transmit queue 1 at a second one 2 MiB up.</summary>
public sealed class VirtioNetTests : IDisposable
{
    private const ulong TxArea = 2 << 20;
    private static readonly MacAddress Mac = MacAddress.Parse("52:54:00:ab:cd:ef");
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(4 << 20);
    private readonly FakeNetBackend _backend;
    private readonly VirtioNet _net;
    private readonly VirtioMmioTransport _transport;
    private readonly MockMmioDriver _driver;
    private readonly MockQueue _rx, _tx;

    public VirtioNetTests() : this(offloads: true) { }

    private VirtioNetTests(bool offloads)
    {
        _backend = new FakeNetBackend(offloads);
        _net = new VirtioNet(_backend, Mac, "vnet0");
        _transport = new VirtioMmioTransport(_net, _memory, new RecordingInterruptLine());
        _driver = new MockMmioDriver(_transport);
        _rx = new MockQueue(_memory, 16);
        _tx = new MockQueue(_memory, 16, TxArea);
    }

    public void Dispose()
    {
        _net.Dispose();
        _memory.Dispose();
    }

    private void BringUp(ulong? features = null)
    {
        _driver.Negotiate(features ?? _driver.DeviceFeatures()).Should().BeTrue();
        _driver.SetupQueue(0, _rx.Layout);
        _driver.SetupQueue(1, _tx.Layout);
        _driver.DriverOk();
    }

    private bool NeedsReset => (_driver.Read(R.Status) & VirtioStatus.DeviceNeedsReset) != 0;

    private static byte[] Frame(int length, byte seed)
    {
        var f = new byte[length];
        for (int i = 0; i < length; i++) f[i] = (byte)(seed + i);
        return f;
    }

    private static byte[] WithHeader(byte[] frame)
    {
        var b = new byte[P.HeaderSize + frame.Length];
        frame.CopyTo(b, P.HeaderSize);
        return b;
    }

    private static bool Eventually(Func<bool> condition) => SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(20));

    [Fact]
    public void Offers_mac_status_and_the_offloads_the_backend_supports()
    {
        ulong f = _driver.DeviceFeatures();
        foreach (var bit in new[] { P.FeatureMac, P.FeatureStatus, P.FeatureCsum, P.FeatureHostTso4, P.FeatureHostTso6,
                     P.FeatureGuestCsum, P.FeatureGuestTso4, P.FeatureGuestTso6, VirtioFeatures.Version1 })
            (f & bit).Should().NotBe(0UL, $"bit {System.Numerics.BitOperations.Log2(bit)}");
        (f & P.FeatureMrgRxbuf).Should().Be(0UL);
        _driver.Read(R.DeviceId).Should().Be(1);

        using var plain = new FakeNetBackend(offloads: false);
        using var dev = new VirtioNet(plain, Mac);
        var d = new MockMmioDriver(new VirtioMmioTransport(dev, _memory, new RecordingInterruptLine()));
        (d.DeviceFeatures() & (P.FeatureGuestCsum | P.FeatureGuestTso4 | P.FeatureGuestTso6)).Should().Be(0UL,
            "a backend that cannot hand over offloaded frames gets no GUEST_* features");
    }

    [Fact]
    public void Config_space_holds_the_mac_and_link_up()
    {
        var config = new byte[8];
        for (int i = 0; i < 8; i++) config[i] = (byte)_driver.Read(R.Config + (uint)i);
        config.AsSpan(0, 6).ToArray().Should().Equal(Mac.ToBytes());
        BinaryPrimitives.ReadUInt16LittleEndian(config.AsSpan(6)).Should().Be(P.StatusLinkUp);
    }

    [Fact]
    public void The_guest_offloads_reach_the_backend_at_driver_ok_and_go_at_reset()
    {
        BringUp(VirtioFeatures.Version1 | P.FeatureGuestCsum | P.FeatureGuestTso4);
        _backend.Offloads.Should().Be((true, true, false));
        _driver.Write(R.Status, 0);
        _backend.Offloads.Should().Be((false, false, false));
    }

    [Fact]
    public void A_transmitted_chain_reaches_the_backend_with_its_header()
    {
        BringUp();
        var frame = Frame(60, 1);
        var header = new byte[P.HeaderSize];
        header[P.HeaderFlags] = P.HeaderFlagNeedsCsum;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(P.HeaderNumBuffers), 7); // the device clears it
        _tx.AddChain((_tx.AllocateWith(header), P.HeaderSize, false), (_tx.AllocateWith(frame.AsSpan(0, 20)), 20, false),
            (_tx.AllocateWith(frame.AsSpan(20)), 40, false));
        _driver.Notify(1);
        _tx.WaitUsed(1).Should().BeTrue();
        _tx.Used(0).Length.Should().Be(0);
        _backend.Sent.Should().ContainSingle();
        var sent = _backend.Sent.Single();
        sent[P.HeaderFlags].Should().Be(P.HeaderFlagNeedsCsum);
        BinaryPrimitives.ReadUInt16LittleEndian(sent.AsSpan(P.HeaderNumBuffers)).Should().Be(0);
        sent.AsSpan(P.HeaderSize).ToArray().Should().Equal(frame);
        _net.Counters.TxFrames.Should().Be(1);
        _net.Counters.TxBytes.Should().Be(60);
    }

    [Fact]
    public void A_received_frame_lands_in_the_drivers_buffer_with_one_buffer_in_the_header()
    {
        BringUp(VirtioFeatures.Version1 | P.FeatureMac);
        ulong buffer = _rx.Allocate(1526);
        _rx.AddChain((buffer, 1526, true));
        _driver.Notify(0);
        var frame = Frame(100, 9);
        var injected = WithHeader(frame);
        injected[P.HeaderFlags] = P.HeaderFlagDataValid; // not negotiated: the device must clear it
        _backend.Inject(injected);
        _rx.WaitUsed(1).Should().BeTrue();
        _rx.Used(0).Length.Should().Be((uint)(P.HeaderSize + 100));
        var got = new byte[P.HeaderSize + 100];
        _memory.Read(new GuestAddress(buffer), got);
        got[P.HeaderFlags].Should().Be(0);
        BinaryPrimitives.ReadUInt16LittleEndian(got.AsSpan(P.HeaderNumBuffers)).Should().Be(1);
        got.AsSpan(P.HeaderSize).ToArray().Should().Equal(frame);
        _net.Counters.RxFrames.Should().Be(1);
    }

    [Fact]
    public void A_received_frame_marks_its_pages_in_the_host_write_log()
    {
        // The dirty-log engine reads this log: KVM's dirty log sees only vCPU writes, not the device worker's.
        BringUp();
        ulong buffer = _rx.Allocate(1526, 4096);
        _rx.AddChain((buffer, 1526, true));
        _memory.StartHostWriteLog();
        _backend.Inject(WithHeader(Frame(1400, 3)));
        _driver.Notify(0);
        _rx.WaitUsed(1).Should().BeTrue();
        var bitmap = new ulong[(4 << 20) / 4096 / 64];
        _memory.TakeHostWrites(0, bitmap);
        _memory.StopHostWriteLog();
        ulong page = buffer / 4096;
        (bitmap[page / 64] >> (int)(page % 64) & 1).Should().Be(1UL, "the frame's page was written by the device");
        ulong usedPage = (MockQueue.UsedAddress) / 4096;
        (bitmap[usedPage / 64] >> (int)(usedPage % 64) & 1).Should().Be(1UL, "and the used ring's");
    }

    [Fact]
    public void Without_receive_buffers_frames_wait_in_the_backend_until_the_driver_posts_one()
    {
        BringUp();
        _backend.Inject(WithHeader(Frame(60, 1)));
        _backend.Inject(WithHeader(Frame(60, 2)));
        Thread.Sleep(50); // give a wrong implementation the chance to take (and lose) them
        _backend.Waiting.Should().Be(2, "nothing is read while the driver has no buffer");
        _net.Counters.RxFrames.Should().Be(0);

        ulong a = _rx.Allocate(1526);
        _rx.AddChain((a, 1526, true));
        _driver.Notify(0);
        _rx.WaitUsed(1).Should().BeTrue();
        Thread.Sleep(50);
        _backend.Waiting.Should().Be(1, "one buffer takes one frame");
        ulong b = _rx.Allocate(1526);
        _rx.AddChain((b, 1526, true));
        _driver.Notify(0);
        _rx.WaitUsed(2).Should().BeTrue();
        _memory.Read<byte>(new GuestAddress(b + P.HeaderSize)).Should().Be(2, "frames keep their order");
        _backend.Waiting.Should().Be(0);
    }

    [Fact]
    public void A_frame_larger_than_the_buffer_is_dropped_and_counted_and_the_next_one_fits()
    {
        BringUp();
        ulong small = _rx.Allocate(100), big = _rx.Allocate(1526);
        _rx.AddChain((small, 100, true));
        _backend.Inject(WithHeader(Frame(1000, 1)));
        _driver.Notify(0);
        _rx.WaitUsed(1).Should().BeTrue();
        _rx.Used(0).Length.Should().Be(0, "the chain comes back empty");
        _net.Counters.RxTooBig.Should().Be(1);
        _rx.AddChain((big, 1526, true));
        _backend.Inject(WithHeader(Frame(200, 5)));
        _driver.Notify(0);
        _rx.WaitUsed(2).Should().BeTrue();
        _rx.Used(1).Length.Should().Be((uint)(P.HeaderSize + 200));
        NeedsReset.Should().BeFalse();
    }

    [Fact]
    public void Transmit_chains_too_short_or_too_long_are_dropped_and_counted_not_fatal()
    {
        BringUp();
        _tx.AddChain((_tx.Allocate(10), 10, false));
        _tx.AddChain((_tx.Allocate(70000), 70000, false));
        _driver.Notify(1);
        _tx.WaitUsed(2).Should().BeTrue();
        _net.Counters.TxMalformed.Should().Be(2);
        _backend.Sent.Should().BeEmpty();
        NeedsReset.Should().BeFalse();
    }

    [Fact]
    public void A_backend_without_room_drops_the_frame_and_counts_it()
    {
        BringUp();
        _backend.Full = true;
        _tx.AddChain((_tx.AllocateWith(WithHeader(Frame(60, 1))), (uint)(P.HeaderSize + 60), false));
        _driver.Notify(1);
        _tx.WaitUsed(1).Should().BeTrue();
        _net.Counters.TxDropped.Should().Be(1);
    }

    [Fact]
    public void A_transmit_chain_with_a_writable_buffer_needs_reset()
    {
        BringUp();
        _tx.AddChain((_tx.AllocateWith(WithHeader(Frame(60, 1))), 72, false), (_tx.Allocate(16), 16, true));
        _driver.Notify(1);
        Eventually(() => NeedsReset).Should().BeTrue();
        _backend.Sent.Should().BeEmpty();
    }

    [Fact]
    public void A_receive_chain_with_a_readable_buffer_needs_reset()
    {
        BringUp();
        _rx.AddChain((_rx.Allocate(16), 16, false), (_rx.Allocate(1526), 1526, true));
        _backend.Inject(WithHeader(Frame(60, 1)));
        _driver.Notify(0);
        Eventually(() => NeedsReset).Should().BeTrue();
    }

    [Fact]
    public void A_looping_chain_and_a_buffer_outside_ram_need_reset_and_never_escape_guest_ram()
    {
        BringUp();
        // Descriptor 0 points to itself: a loop the chain bound must catch.
        _tx.WriteDescriptor(MockQueue.DescAddress + TxArea, 0, _tx.Allocate(64), 64, VirtqDescriptor.FlagNext, 0);
        _tx.Publish(0);
        _driver.Notify(1);
        Eventually(() => NeedsReset).Should().BeTrue();

        _driver.Write(R.Status, 0);
        NeedsReset.Should().BeFalse();
        var rx = new MockQueue(_memory, 16);
        var tx = new MockQueue(_memory, 16, TxArea);
        _driver.Negotiate(_driver.DeviceFeatures()).Should().BeTrue();
        _driver.SetupQueue(0, rx.Layout);
        _driver.SetupQueue(1, tx.Layout);
        _driver.DriverOk();
        rx.AddChain((0xFFFF_0000, 1526, true));
        _backend.Inject(WithHeader(Frame(60, 1)));
        _driver.Notify(0);
        Eventually(() => NeedsReset).Should().BeTrue();
    }

    [Fact]
    public void A_quiesced_device_delivers_nothing_and_its_state_restores_into_a_new_device()
    {
        BringUp();
        ulong a = _rx.Allocate(1526);
        _rx.AddChain((a, 1526, true));
        _driver.Notify(0);
        _backend.Inject(WithHeader(Frame(60, 1)));
        _rx.WaitUsed(1).Should().BeTrue();

        _net.Quiesce(TimeSpan.FromSeconds(5)).Should().BeTrue();
        ulong b = _rx.Allocate(1526);
        _rx.AddChain((b, 1526, true));
        _backend.Inject(WithHeader(Frame(60, 2)));
        _driver.Notify(0);
        Thread.Sleep(50);
        _rx.UsedIdx.Should().Be(1, "no receive writes guest RAM while the device is quiesced");
        var state = _transport.Save();
        state.Queues[0].NextAvail.Should().Be(1);
        state.DeviceConfig.ToArray().Should().Equal(_net.ConfigSnapshot());

        using var backend2 = new FakeNetBackend();
        using var net2 = new VirtioNet(backend2, Mac, "vnet0");
        var transport2 = new VirtioMmioTransport(net2, _memory, new RecordingInterruptLine());
        transport2.Restore(state);
        backend2.Offloads.Should().Be((true, true, true), "the restored driver's offloads are applied again");
        backend2.Inject(WithHeader(Frame(60, 3)));
        _rx.WaitUsed(2).Should().BeTrue();
        _memory.Read<byte>(new GuestAddress(b + P.HeaderSize)).Should().Be(3);

        using var otherMac = new VirtioNet(new FakeNetBackend(), MacAddress.Parse("52:54:00:00:00:01"), "vnet0");
        var transport3 = new VirtioMmioTransport(otherMac, _memory, new RecordingInterruptLine());
        var restore = () => transport3.Restore(state);
        restore.Should().Throw<DeviceStateException>("the guest driver cached the MAC");
    }
}

public sealed class NetSpecTests
{
    [Theory]
    [InlineData("tap=tap0", "tap0", null)]
    [InlineData("tap=tap0,mac=52:54:00:12:34:99", "tap0", "52:54:00:12:34:99")]
    [InlineData("mac=02:00:00:00:00:01,tap=t", "t", "02:00:00:00:00:01")]
    public void Parses_tap_and_mac(string text, string tap, string? mac)
    {
        var spec = NetSpec.Parse(text);
        spec.Tap.Should().Be(tap);
        spec.Mac?.ToString().Should().Be(mac);
        NetSpec.Parse(spec.ToOptionText()).Should().Be(spec);
    }

    [Theory]
    [InlineData("", "needs tap=NAME")]
    [InlineData("mac=52:54:00:12:34:56", "needs tap=NAME")]
    [InlineData("tap=", "empty")]
    [InlineData("tap=abcdefghijklmnop", "longer than 15 bytes")]
    [InlineData("tap=a/b", "not a valid interface name")]
    [InlineData("tap=a:b", "not a valid interface name")]
    [InlineData("tap=..", "not a valid interface name")]
    [InlineData("tap=a=b", "separate the --net options")]
    [InlineData("tap=t,mac=52:54:00:12:34", "six hex byte pairs")]
    [InlineData("tap=t,mac=52:54:00:12:34:zz", "not a hex byte")]
    [InlineData("tap=t,mac=01:00:5e:00:00:01", "multicast")]
    [InlineData("tap=t,mac=00:00:00:00:00:00", "all-zero")]
    [InlineData("tap=t,speed=10", "unknown option 'speed'")]
    [InlineData("tap=t,tap=u", "given twice")]
    public void Refuses_bad_options_with_the_reason(string text, string why)
    {
        var parse = () => NetSpec.Parse(text);
        parse.Should().Throw<FormatException>().WithMessage($"*{why}*");
    }

    [Theory]
    [InlineData("")]
    [InlineData("abcdefghijklmnop")]
    [InlineData("a/b")]
    [InlineData("a b")]
    [InlineData(".")]
    [InlineData("a\u0001")]
    [InlineData("tap0")]
    public void A_tap_name_is_checked_by_the_kernels_one_rule(string name)
    {
        NetSpec.TapNameProblem(name).Should().Be(MiniVmm.Core.Net.InterfaceName.Problem(name),
            "--net refuses exactly what the tap's open refuses, with the same reason");
    }

    [Theory]
    [InlineData("a,b")]
    [InlineData("a=b")]
    public void A_tap_name_with_an_option_separator_is_refused_although_the_kernel_takes_it(string name)
    {
        MiniVmm.Core.Net.InterfaceName.Problem(name).Should().BeNull();
        NetSpec.TapNameProblem(name).Should().Contain("separate the --net options");
    }

    [Fact]
    public void Default_macs_are_unicast_and_differ_per_slot()
    {
        MacAddress.DefaultFor(0).ToString().Should().Be("52:54:00:12:34:56");
        MacAddress.DefaultFor(1).Should().NotBe(MacAddress.DefaultFor(0));
        (MacAddress.DefaultFor(0).B0 & 1).Should().Be(0);
    }
}
