using MiniVmm.Core.Bus;
using IoBus = MiniVmm.Core.Bus.Bus;

namespace MiniVmm.Core.Tests.Bus;

public sealed class BusTests
{
    private readonly IoBus _bus = new(BusKind.Pio);

    [Fact]
    public void Name_defaults_to_the_kind()
    {
        new IoBus(BusKind.Pio).Name.Should().Be("pio");
        new IoBus(BusKind.Mmio).Name.Should().Be("mmio");
        new IoBus(BusKind.Mmio, "mmio-low").Name.Should().Be("mmio-low");
    }

    [Fact]
    public void Dispatch_passes_the_offset_inside_the_range()
    {
        var serial = new RecordingDevice(0x11);
        var exit = new RecordingDevice(0x22);
        _bus.Register(0x3F8, 8, serial, "serial");
        _bus.Register(0xF4, 4, exit, "debug-exit");

        Span<byte> one = stackalloc byte[1];
        _bus.TryRead(0x3FD, one).Should().BeTrue();
        one[0].Should().Be(0x11);
        _bus.TryWrite(0xF4, [1, 0, 0, 0]).Should().BeTrue();
        _bus.TryWrite(0x3F8, [(byte)'A']).Should().BeTrue();

        serial.Reads.Should().Equal((5ul, 1));
        serial.Writes.Should().ContainSingle().Which.Offset.Should().Be(0ul);
        exit.Writes.Should().ContainSingle().Which.Data.Should().Equal(1, 0, 0, 0);
    }

    [Fact]
    public void Last_byte_of_a_range_is_mapped()
    {
        var device = new RecordingDevice();
        _bus.Register(0x1000, 0x10, device, "dev");
        Span<byte> four = stackalloc byte[4];
        _bus.TryRead(0x100C, four).Should().BeTrue();
        _bus.TryRead(0x100F, four[..1]).Should().BeTrue();
        device.Reads.Should().Equal((0xCul, 4), (0xFul, 1));
    }

    [Theory]
    [InlineData(0x100Dul, 4)]
    [InlineData(0x100Ful, 2)]
    [InlineData(0x0FFFul, 2)]
    [InlineData(0x0FFFul, 8)]
    public void Accesses_straddling_a_range_edge_are_unmapped(ulong address, int size)
    {
        var device = new RecordingDevice();
        _bus.Register(0x1000, 0x10, device, "dev");
        byte[] data = new byte[size];
        Array.Fill(data, (byte)0x5A);
        _bus.TryRead(address, data).Should().BeFalse();
        data.Should().OnlyContain(b => b == 0x5A, "an unmapped read leaves the buffer to the caller");
        _bus.TryWrite(address, data).Should().BeFalse();
        device.Reads.Should().BeEmpty();
        device.Writes.Should().BeEmpty();
    }

    [Fact]
    public void Access_spanning_two_adjacent_devices_is_unmapped()
    {
        var a = new RecordingDevice();
        var b = new RecordingDevice();
        _bus.Register(0x60, 4, a, "a");
        _bus.Register(0x64, 4, b, "b");
        _bus.TryRead(0x63, new byte[2]).Should().BeFalse();
        _bus.TryRead(0x64, new byte[4]).Should().BeTrue();
        b.Reads.Should().Equal((0ul, 4));
    }

    [Theory]
    [InlineData(0x0ul)]
    [InlineData(0x7Ful)]
    [InlineData(0x88ul)]
    [InlineData(0x100ul)]
    [InlineData(ulong.MaxValue)]
    public void Addresses_outside_every_range_are_unmapped(ulong address)
    {
        _bus.Register(0x80, 8, new RecordingDevice(), "a");
        _bus.Register(0x90, 8, new RecordingDevice(), "b");
        _bus.TryRead(address, new byte[1]).Should().BeFalse();
        _bus.TryWrite(address, new byte[1]).Should().BeFalse();
    }

    [Fact]
    public void Empty_bus_and_empty_accesses_are_unmapped()
    {
        _bus.TryRead(0, new byte[1]).Should().BeFalse();
        _bus.Register(0, 0x10, new RecordingDevice(), "dev");
        _bus.TryRead(0, Span<byte>.Empty).Should().BeFalse();
        _bus.TryWrite(0, ReadOnlySpan<byte>.Empty).Should().BeFalse();
    }

    [Fact]
    public void Zero_length_is_rejected()
    {
        Action register = () => _bus.Register(0x3F8, 0, new RecordingDevice(), "serial");
        register.Should().Throw<ArgumentException>().WithMessage("pio bus: cannot register 'serial' at 0x3f8 with zero length*");
    }

    [Theory]
    [InlineData(ulong.MaxValue, 1ul)]
    [InlineData(ulong.MaxValue - 1, 3ul)]
    [InlineData(0xFFFF_FFFF_FFFF_F000ul, 0x1000ul)]
    [InlineData(1ul, ulong.MaxValue)]
    public void Ranges_that_wrap_are_rejected(ulong baseAddress, ulong length)
    {
        Action register = () => _bus.Register(baseAddress, length, new RecordingDevice(), "dev");
        register.Should().Throw<ArgumentException>().WithMessage("*wraps past the end of the address space*");
    }

    [Fact]
    public void Range_ending_just_below_the_top_is_accepted()
    {
        var device = new RecordingDevice();
        _bus.Register(ulong.MaxValue - 0x10, 0x10, device, "top");
        _bus.TryRead(ulong.MaxValue - 1, new byte[1]).Should().BeTrue();
        _bus.TryRead(ulong.MaxValue, new byte[1]).Should().BeFalse();
        _bus.TryRead(ulong.MaxValue - 1, new byte[2]).Should().BeFalse();
    }

    [Theory]
    [InlineData(0x3F8ul, 8ul)]   // same
    [InlineData(0x3F0ul, 9ul)]   // overlaps the first byte
    [InlineData(0x3FFul, 4ul)]   // overlaps the last byte
    [InlineData(0x3FAul, 2ul)]   // inside
    [InlineData(0x300ul, 0x200ul)] // contains
    public void Overlaps_are_rejected(ulong baseAddress, ulong length)
    {
        _bus.Register(0x3F8, 8, new RecordingDevice(), "serial");
        Action register = () => _bus.Register(baseAddress, length, new RecordingDevice(), "other");
        register.Should().Throw<ArgumentException>()
            .WithMessage($"pio bus: cannot register 'other' at 0x{baseAddress:x}-0x{baseAddress + length - 1:x}: it overlaps 'serial' at 0x3f8-0x3ff");
        _bus.Ranges.Should().ContainSingle();
    }

    [Fact]
    public void Adjacent_ranges_are_accepted_and_kept_sorted()
    {
        _bus.Register(0x3F8, 8, new RecordingDevice(), "c");
        _bus.Register(0x3F0, 8, new RecordingDevice(), "b");
        _bus.Register(0x400, 1, new RecordingDevice(), "d");
        _bus.Register(0, 0x3F0, new RecordingDevice(), "a");
        _bus.Ranges.Select(r => r.Name).Should().Equal("a", "b", "c", "d");
        _bus.Ranges[1].Last.Should().Be(0x3F7);
    }

    [Fact]
    public void Register_validates_its_arguments()
    {
        Action noDevice = () => _bus.Register(0, 1, null!, "x");
        noDevice.Should().Throw<ArgumentNullException>();
        Action noName = () => _bus.Register(0, 1, new RecordingDevice(), "");
        noName.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void Frozen_bus_refuses_registration_but_keeps_dispatching()
    {
        _bus.Register(0x60, 5, new RecordingDevice(), "i8042");
        _bus.Freeze();
        _bus.Freeze();
        _bus.IsFrozen.Should().BeTrue();
        Action register = () => _bus.Register(0x70, 2, new RecordingDevice(), "rtc");
        register.Should().Throw<InvalidOperationException>().WithMessage("pio bus is frozen*");
        _bus.TryRead(0x64, new byte[1]).Should().BeTrue();
    }

    [Fact]
    public void Try_find_reports_the_range_and_offset()
    {
        var device = new RecordingDevice();
        _bus.Register(0xD000_0000, 0x1000, device, "virtio0");
        _bus.TryFind(0xD000_0010, 4, out BusRange range, out ulong offset).Should().BeTrue();
        range.Name.Should().Be("virtio0");
        range.Device.Should().BeSameAs(device);
        offset.Should().Be(0x10);
        _bus.TryFind(0xD000_1000, 1, out _, out _).Should().BeFalse();
    }

    [Fact]
    public void Dispatch_does_not_allocate()
    {
        var device = new QuietDevice();
        for (ulong i = 0; i < 64; i++)
            _bus.Register(i * 0x10, 8, device, $"dev{i}");
        _bus.Freeze();
        Span<byte> data = stackalloc byte[4];
        for (int i = 0; i < 1000; i++)
        {
            _bus.TryRead((ulong)(i % 1024), data);
            _bus.TryWrite((ulong)(i % 1024), data);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            _bus.TryRead((ulong)(i % 1024), data);
            _bus.TryWrite((ulong)(i % 1024), data);
        }
        GC.GetAllocatedBytesForCurrentThread().Should().Be(before);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(8)]
    public void Random_ranges_dispatch_like_a_linear_search(int seed)
    {
        var random = new Random(seed);
        var bus = new IoBus(BusKind.Mmio);
        var reference = new List<(ulong Base, ulong Length, RecordingDevice Device)>();
        for (int i = 0; i < 300; i++)
        {
            ulong baseAddress = (ulong)random.Next(0, 1 << 16);
            ulong length = (ulong)random.Next(1, 64);
            var device = new RecordingDevice();
            bool overlaps = reference.Any(r => baseAddress < r.Base + r.Length && r.Base < baseAddress + length);
            Action register = () => bus.Register(baseAddress, length, device, $"d{i}");
            if (overlaps)
            {
                register.Should().Throw<ArgumentException>();
            }
            else
            {
                register();
                reference.Add((baseAddress, length, device));
            }
        }
        bus.Freeze();

        byte[] buffer = new byte[8];
        for (int i = 0; i < 20_000; i++)
        {
            ulong address = (ulong)random.Next(0, (1 << 16) + 100);
            int size = random.Next(0, 9);
            var expected = reference.FirstOrDefault(r =>
                size > 0 && address >= r.Base && address + (ulong)size <= r.Base + r.Length);
            int readsBefore = expected.Device?.Reads.Count ?? 0;
            bus.TryRead(address, buffer.AsSpan(0, size)).Should().Be(expected.Device is not null);
            if (expected.Device is not null)
                expected.Device.Reads[readsBefore].Should().Be((address - expected.Base, size));
        }
    }

    [Fact]
    public async Task Concurrent_readers_see_consistent_ranges_while_registering()
    {
        var bus = new IoBus(BusKind.Pio);
        var device = new QuietDevice();
        bus.Register(0, 0x10, device, "first");
        using var stop = new CancellationTokenSource();
        long misses = 0;
        Task[] readers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            Span<byte> data = stackalloc byte[1];
            while (!stop.IsCancellationRequested)
            {
                if (!bus.TryRead(0x8, data))
                    Interlocked.Increment(ref misses);
            }
        })).ToArray();
        for (ulong i = 1; i < 2000; i++)
            bus.Register(i * 0x10, 0x10, device, $"d{i}");
        stop.Cancel();
        await Task.WhenAll(readers);
        misses.Should().Be(0, "a range registered before the readers started is always visible");
        bus.Ranges.Should().HaveCount(2000);
    }
}
