using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio;
using MiniVmm.Devices.Virtio.Mmio;
using MiniVmm.Devices.Virtio.Rng;
using R = MiniVmm.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace MiniVmm.Devices.Tests.Virtio;

public sealed class VirtioMmioTransportTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(1 << 20);
    private readonly RecordingInterruptLine _irq = new();
    private readonly VirtioRng _rng = new(new CountingEntropy());
    private readonly VirtioMmioTransport _transport;
    private readonly MockMmioDriver _driver;
    private readonly MockQueue _queue;

    public VirtioMmioTransportTests()
    {
        _transport = new VirtioMmioTransport(_rng, _memory, _irq);
        _driver = new MockMmioDriver(_transport);
        _queue = new MockQueue(_memory, 16);
    }

    public void Dispose()
    {
        _rng.Dispose();
        _memory.Dispose();
    }

    private bool NeedsReset => (_driver.Read(R.Status) & VirtioStatus.DeviceNeedsReset) != 0;

    [Fact]
    public void Identification_registers_read_as_virtio_mmio_version_2()
    {
        _driver.Read(R.MagicValue).Should().Be(0x74726976);
        _driver.Read(R.Version).Should().Be(2);
        _driver.Read(R.DeviceId).Should().Be(VirtioDeviceId.Entropy);
        _driver.Read(R.VendorId).Should().Be(R.MiniVmmVendor);
        _driver.Write(R.QueueSel, 0);
        _driver.Read(R.QueueNumMax).Should().Be(256);
        _driver.Write(R.QueueSel, 1);
        _driver.Read(R.QueueNumMax).Should().Be(0, "the rng has one queue");
        _driver.DeviceFeatures().Should().Be(VirtioFeatures.Common);
    }

    [Fact]
    public void Features_ok_is_refused_without_version_1_or_with_unoffered_bits()
    {
        _driver.Negotiate(VirtioFeatures.RingEventIdx).Should().BeFalse();
        _driver.Negotiate(VirtioFeatures.Version1 | 1UL << 40).Should().BeFalse();
        _driver.Negotiate(VirtioFeatures.Version1).Should().BeTrue();
        NeedsReset.Should().BeFalse();
    }

    [Fact]
    public void Out_of_order_or_bit_clearing_status_writes_set_needs_reset_and_reset_clears_it()
    {
        _driver.Write(R.Status, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.DriverOk);
        NeedsReset.Should().BeTrue("DRIVER_OK came before FEATURES_OK");
        _driver.Write(R.Status, 0);
        NeedsReset.Should().BeFalse();
        _driver.Read(R.Status).Should().Be(0);

        _driver.Negotiate(VirtioFeatures.Version1).Should().BeTrue();
        _driver.Write(R.Status, VirtioStatus.Acknowledge);
        NeedsReset.Should().BeTrue("a driver may not clear status bits");
    }

    [Fact]
    public void A_queue_outside_guest_ram_is_not_made_ready()
    {
        _driver.Negotiate(VirtioFeatures.Version1).Should().BeTrue();
        _driver.SetupQueue(0, new MiniVmm.Devices.Virtio.Queue.QueueLayout(16, new GuestAddress(0x2000_0000), new GuestAddress(0x3000), new GuestAddress(0x4000)));
        _driver.Read(R.QueueReady).Should().Be(0);
        NeedsReset.Should().BeTrue();
    }

    [Fact]
    public void Queue_registers_are_frozen_after_driver_ok()
    {
        _driver.Bring_up(_queue.Layout);
        _driver.Write(R.QueueNum, 8);
        NeedsReset.Should().BeTrue();
    }

    [Fact]
    public void Rng_fills_posted_buffers_and_raises_the_used_buffer_interrupt_until_acked()
    {
        _driver.Bring_up(_queue.Layout);
        ulong a = _queue.Allocate(64), b = _queue.Allocate(32);
        _queue.AddChain((a, 64, true));
        _queue.AddChain((b, 32, true));
        _driver.Notify();
        _queue.WaitUsed(2).Should().BeTrue();
        _queue.Used(0).Length.Should().Be(64);
        _queue.Used(1).Length.Should().Be(32);
        var bytes = new byte[64];
        _memory.Read(new GuestAddress(a), bytes);
        bytes.Should().NotContain(0, "every byte came from the entropy source");
        SpinWait.SpinUntil(() => _irq.Level, TimeSpan.FromSeconds(20)).Should().BeTrue();
        (_driver.Read(R.InterruptStatus) & R.InterruptUsedBuffer).Should().NotBe(0);
        _driver.Write(R.InterruptAck, R.InterruptUsedBuffer);
        _driver.Read(R.InterruptStatus).Should().Be(0);
        _irq.Level.Should().BeFalse();
    }

    [Fact]
    public void Requests_posted_before_driver_ok_are_served_at_driver_ok()
    {
        _driver.Negotiate(_driver.DeviceFeatures()).Should().BeTrue();
        _driver.SetupQueue(0, _queue.Layout);
        ulong a = _queue.Allocate(8);
        _queue.AddChain((a, 8, true));
        _driver.Notify(); // ignored: not live yet
        _driver.DriverOk();
        _queue.WaitUsed(1).Should().BeTrue();
    }

    [Fact]
    public void A_bad_chain_sets_needs_reset_with_a_config_interrupt_and_stops_the_device()
    {
        _driver.Bring_up(_queue.Layout);
        _queue.AddChain((0x4000_0000, 8, true)); // outside RAM
        _driver.Notify();
        SpinWait.SpinUntil(() => NeedsReset, TimeSpan.FromSeconds(20)).Should().BeTrue();
        (_driver.Read(R.InterruptStatus) & R.InterruptConfigChange).Should().NotBe(0);
        ulong a = _queue.Allocate(8);
        _queue.AddChain((a, 8, true));
        _driver.Notify();
        _rng.IsActive.Should().BeFalse();
        SpinWait.SpinUntil(() => _queue.UsedIdx != 0, TimeSpan.FromMilliseconds(200)).Should().BeFalse("a stopped device serves nothing");

        // A reset and a fresh bring-up (on zeroed rings, as a driver provides) make it usable again.
        var fresh = new MockQueue(_memory, 16);
        _driver.Bring_up(fresh.Layout);
        ulong b = fresh.Allocate(8);
        fresh.AddChain((b, 8, true));
        _driver.Notify();
        fresh.WaitUsed(1).Should().BeTrue();
        NeedsReset.Should().BeFalse();
    }

    [Fact]
    public void Narrow_register_accesses_are_ignored_and_config_space_reads_zero()
    {
        Span<byte> two = stackalloc byte[2];
        _transport.Read(R.MagicValue, two);
        two.ToArray().Should().Equal(0, 0);
        _transport.Write(R.Status, stackalloc byte[] { 1, 0 });
        _driver.Read(R.Status).Should().Be(0);
        Span<byte> config = stackalloc byte[8];
        _transport.Read(R.Config, config);
        config.ToArray().Should().OnlyContain(b => b == 0);
    }

    [Fact]
    public void Quiesced_device_takes_no_requests_until_resumed()
    {
        _driver.Bring_up(_queue.Layout);
        _rng.Quiesce(TimeSpan.FromSeconds(5)).Should().BeTrue();
        ulong a = _queue.Allocate(8);
        _queue.AddChain((a, 8, true));
        _driver.Notify();
        Thread.Sleep(50);
        _queue.UsedIdx.Should().Be(0);
        _rng.Resume();
        _queue.WaitUsed(1).Should().BeTrue();
    }

    [Fact]
    public void Saved_state_restores_into_a_fresh_device_that_continues_at_the_saved_ring_positions()
    {
        _driver.Bring_up(_queue.Layout);
        ulong a = _queue.Allocate(8);
        _queue.AddChain((a, 8, true));
        _driver.Notify();
        _queue.WaitUsed(1).Should().BeTrue();
        _rng.Quiesce(TimeSpan.FromSeconds(5)).Should().BeTrue();
        var state = _transport.Save();
        state.Queues[0].NextAvail.Should().Be(1);
        state.Queues[0].NextUsed.Should().Be(1);
        state.Status.Should().Be(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);

        using var rng2 = new VirtioRng(new CountingEntropy());
        var irq2 = new RecordingInterruptLine();
        var transport2 = new VirtioMmioTransport(rng2, _memory, irq2);
        transport2.Restore(state);
        irq2.Level.Should().Be(state.InterruptStatus != 0);
        ulong b = _queue.Allocate(8);
        _queue.AddChain((b, 8, true));
        new MockMmioDriver(transport2).Notify();
        _queue.WaitUsed(2).Should().BeTrue();
        _queue.Used(1).Length.Should().Be(8);
    }

    [Fact]
    public void Restore_refuses_features_never_offered_and_queues_outside_ram()
    {
        _driver.Bring_up(_queue.Layout);
        _rng.Quiesce(TimeSpan.FromSeconds(5)).Should().BeTrue();
        var state = _transport.Save();
        using var rng2 = new VirtioRng(new CountingEntropy());
        var t2 = new VirtioMmioTransport(rng2, _memory, new RecordingInterruptLine());
        var badFeatures = () => t2.Restore(state with { DriverFeatures = state.DriverFeatures | 1UL << 50 });
        badFeatures.Should().Throw<DeviceStateException>().WithMessage("*subset*");
        var badQueue = () => t2.Restore(state with { Queues = [state.Queues[0] with { UsedRing = 0x7000_0000 }] });
        badQueue.Should().Throw<DeviceStateException>().WithMessage("*outside guest RAM*");
        var badSize = () => t2.Restore(state with { Queues = [state.Queues[0] with { Size = 3 }] });
        badSize.Should().Throw<DeviceStateException>().WithMessage("*power of two*");
        var wrongDevice = () => t2.Restore(state with { DeviceId = VirtioDeviceId.Block });
        wrongDevice.Should().Throw<DeviceStateException>();
    }
}
