using System.Collections.Immutable;
using MiniVmm.Devices.Legacy;

namespace MiniVmm.Devices.Tests.Legacy;

public sealed class Serial8250Tests
{
    private const ulong Data = 0, Ier = 1, Iir = 2, Fcr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    private readonly RecordingSink _sink = new();
    private readonly RecordingInterruptLine _irq = new();
    private readonly Serial8250 _serial;

    public Serial8250Tests()
    {
        _serial = new Serial8250(_sink, _irq);
    }

    private byte In(ulong offset) => In(_serial, offset);

    private static byte In(Serial8250 serial, ulong offset)
    {
        Span<byte> b = stackalloc byte[1];
        serial.Read(offset, b);
        return b[0];
    }

    private void Out(ulong offset, byte value) => _serial.Write(offset, [value]);

    [Fact]
    public void Com1_constants_match_the_pc_layout()
    {
        Serial8250.Com1Port.Should().Be(0x3F8);
        Serial8250.Com1Irq.Should().Be(4u);
        Serial8250.RegisterWindowSize.Should().Be(8ul);
        Serial8250.RxFifoCapacity.Should().Be(64);
    }

    [Fact]
    public void Registers_have_reset_values()
    {
        In(Ier).Should().Be(0);
        In(Iir).Should().Be(0x01);
        In(Lcr).Should().Be(0x03);
        In(Mcr).Should().Be(0);
        In(Lsr).Should().Be(0x60);
        In(Msr).Should().Be(0xB0);
        In(Scr).Should().Be(0);
        _irq.Level.Should().BeFalse();
    }

    [Fact]
    public void Dlab_switches_offsets_0_and_1_to_the_divisor_latch()
    {
        Out(Ier, 0x05);
        Out(Lcr, 0x83);
        Out(Data, 0x01);
        Out(Ier, 0x02);
        In(Data).Should().Be(0x01);
        In(Ier).Should().Be(0x02);
        _sink.Bytes.Should().BeEmpty("a DLL write is not a transmission");

        Out(Lcr, 0x03);
        In(Ier).Should().Be(0x05, "IER kept its value behind the latch");
        var state = _serial.Save();
        state.DivisorLow.Should().Be(0x01);
        state.DivisorHigh.Should().Be(0x02);
    }

    [Fact]
    public void Thr_write_goes_to_the_sink_and_leaves_the_transmitter_empty()
    {
        Out(Data, (byte)'h');
        Out(Data, (byte)'i');
        _sink.Bytes.Should().Equal((byte)'h', (byte)'i');
        In(Lsr).Should().Be(0x60);
        _serial.TransmittedBytes.Should().Be(2);
    }

    [Fact]
    public void Received_bytes_set_data_ready_until_read()
    {
        _serial.EnqueueInput("ab"u8).Should().Be(2);
        (In(Lsr) & 0x01).Should().Be(1);
        In(Data).Should().Be((byte)'a');
        (In(Lsr) & 0x01).Should().Be(1);
        In(Data).Should().Be((byte)'b');
        (In(Lsr) & 0x01).Should().Be(0);
        In(Data).Should().Be(0, "an empty receiver reads 0");
    }

    [Fact]
    public void Rx_fifo_accepts_at_most_64_bytes()
    {
        byte[] input = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray();
        _serial.EnqueueInput(input).Should().Be(64);
        _serial.EnqueueInput(input).Should().Be(0);
        _serial.RxFreeSpace.Should().Be(0);

        In(Data).Should().Be(0);
        _serial.EnqueueInput([200]).Should().Be(1);
        for (int i = 1; i < 64; i++)
            In(Data).Should().Be((byte)i);
        In(Data).Should().Be(200, "order is kept across the ring's wrap-around");
        (In(Lsr) & 0x01).Should().Be(0);
    }

    [Fact]
    public void Rx_drained_callback_fires_when_the_guest_empties_the_fifo()
    {
        int drained = 0;
        var serial = new Serial8250(_sink, _irq, () => drained++);
        serial.EnqueueInput("xy"u8);
        In(serial, Data);
        drained.Should().Be(0);
        In(serial, Data);
        drained.Should().Be(1);
        In(serial, Data);
        drained.Should().Be(1, "reading an empty FIFO drains nothing");
    }

    [Fact]
    public void Loopback_routes_thr_to_the_receiver_and_mirrors_mcr_in_msr()
    {
        Out(Mcr, 0x10);
        In(Msr).Should().Be(0x0B, "CTS, DSR and DCD dropped (deltas), RI never rose");
        Out(Data, 0x55);
        _sink.Bytes.Should().BeEmpty();
        In(Lsr).Should().Be(0x61);
        In(Data).Should().Be(0x55);

        Out(Mcr, 0x10 | 0x01 | 0x02 | 0x04 | 0x08);
        In(Msr).Should().Be(0xF0 | 0x0B);
        In(Msr).Should().Be(0xF0, "reading MSR clears the deltas");
        Out(Mcr, 0x10 | 0x03);
        In(Msr).Should().Be(0x30 | 0x04 | 0x08, "RI falling sets TERI, DCD falling sets DDCD");
    }

    [Fact]
    public void Loopback_overflow_sets_overrun_which_a_lsr_read_clears()
    {
        Out(Mcr, 0x10);
        for (int i = 0; i < 64; i++)
            Out(Data, (byte)i);
        In(Lsr).Should().Be(0x61);
        Out(Data, 0xFF);
        In(Lsr).Should().Be(0x63);
        In(Lsr).Should().Be(0x61);
        _serial.OverrunCount.Should().Be(1);
        _serial.Save().RxFifo.Length.Should().Be(64);
    }

    [Fact]
    public void Host_input_is_refused_in_loopback()
    {
        Out(Mcr, 0x10);
        _serial.EnqueueInput("a"u8).Should().Be(0);
        _serial.RxFreeSpace.Should().Be(0);
        Out(Mcr, 0x00);
        _serial.EnqueueInput("a"u8).Should().Be(1);
    }

    [Fact]
    public void Iir_reports_pending_conditions_by_priority()
    {
        Out(Mcr, 0x10);
        for (int i = 0; i < 65; i++)
            Out(Data, 0x41); // fills the FIFO and overruns
        Out(Mcr, 0x12);        // RTS up: DCTS
        Out(Ier, 0x0F);

        In(Iir).Should().Be(0x06, "line status first");
        In(Lsr);
        In(Iir).Should().Be(0x04, "then received data");
        for (int i = 0; i < 64; i++)
            In(Data);
        In(Iir).Should().Be(0x02, "then THR empty; this read acknowledges it");
        In(Iir).Should().Be(0x00, "then modem status");
        In(Msr);
        In(Iir).Should().Be(0x01);
        _irq.Level.Should().BeFalse();
    }

    [Fact]
    public void Received_data_interrupt_follows_the_fifo_level()
    {
        Out(Ier, 0x01);
        _irq.Level.Should().BeFalse();
        _serial.EnqueueInput("ab"u8);
        _irq.Level.Should().BeTrue();
        In(Iir).Should().Be(0x04);
        _irq.Level.Should().BeTrue("reading IIR does not acknowledge received data");
        In(Data);
        _irq.Level.Should().BeTrue();
        In(Data);
        _irq.Level.Should().BeFalse();
    }

    [Fact]
    public void Thr_empty_interrupt_rises_on_enable_and_after_each_write()
    {
        Out(Ier, 0x02);
        _irq.Level.Should().BeTrue("THR is empty when ETBEI is switched on");
        In(Iir).Should().Be(0x02);
        _irq.Level.Should().BeFalse();
        In(Iir).Should().Be(0x01);

        Out(Data, (byte)'x');
        _irq.Level.Should().BeTrue();
        _irq.Raises.Should().Be(2);

        Out(Ier, 0x00);
        _irq.Level.Should().BeFalse("disabling the source lowers the line");
        Out(Ier, 0x02);
        _irq.Level.Should().BeTrue();
    }

    [Fact]
    public void Interrupt_line_is_only_driven_on_level_changes()
    {
        Out(Ier, 0x01);
        _serial.EnqueueInput("abc"u8);
        _serial.EnqueueInput("def"u8);
        In(Data);
        _irq.Calls.Should().Be(1);
        _serial.InterruptAsserted.Should().BeTrue();
    }

    [Fact]
    public void Fcr_enables_fifo_bits_in_iir_and_clears_the_receiver()
    {
        Out(Fcr, 0xC1);
        In(Iir).Should().Be(0xC1);
        _serial.EnqueueInput("abc"u8);
        Out(Fcr, 0xC3);
        (In(Lsr) & 0x01).Should().Be(0, "FCR bit 1 clears the RX FIFO");
        _serial.Save().FifoControl.Should().Be(0xC1, "clear bits are self-clearing");

        _serial.EnqueueInput("abc"u8);
        Out(Fcr, 0x00);
        (In(Lsr) & 0x01).Should().Be(0, "toggling FIFO enable clears the FIFO");
        In(Iir).Should().Be(0x01);
    }

    [Fact]
    public void Reserved_bits_are_masked_and_read_only_registers_ignore_writes()
    {
        Out(Ier, 0xFF);
        In(Ier).Should().Be(0x0F);
        Out(Mcr, 0xFF);
        In(Mcr).Should().Be(0x1F);
        Out(Mcr, 0);
        Out(Lsr, 0x00);
        In(Lsr).Should().Be(0x60);
        Out(Msr, 0x00);
        (In(Msr) & 0xF0).Should().Be(0xB0);
        Out(Scr, 0x5A);
        In(Scr).Should().Be(0x5A);
    }

    [Fact]
    public void Wide_accesses_are_split_into_byte_registers()
    {
        _serial.Write(Lcr, [0x1B, 0x00]);   // LCR, MCR
        In(Lcr).Should().Be(0x1B);
        Span<byte> two = stackalloc byte[2];
        _serial.EnqueueInput("Q"u8);
        _serial.Read(Data, two);           // RBR, IER
        two.ToArray().Should().Equal((byte)'Q', 0);

        Span<byte> wide = stackalloc byte[4];
        _serial.Read(6, wide);              // MSR, SCR, then past the window
        wide[2].Should().Be(0);
        wide[3].Should().Be(0);
        _serial.Write(7, [1, 2, 3]);        // SCR, then ignored
        In(Scr).Should().Be(1);
        _serial.Write(ulong.MaxValue, [1]);
        _serial.Read(ulong.MaxValue - 1, two);
        two.ToArray().Should().Equal(0, 0);
    }

    [Fact]
    public void Save_and_restore_round_trip()
    {
        Out(Lcr, 0x80);
        Out(Data, 0x03);
        Out(Lcr, 0x1B);
        Out(Fcr, 0x81);
        Out(Scr, 0x77);
        Out(Mcr, 0x0B);
        Out(Ier, 0x0F);
        _serial.EnqueueInput("hello"u8);
        In(Data);

        Serial8250State saved = _serial.Save();
        var irq = new RecordingInterruptLine();
        var sink = new RecordingSink();
        Serial8250 restored = Serial8250.Restore(saved, sink, irq);

        restored.Save().Should().Be(saved);
        irq.Level.Should().BeTrue("the restored device drives its pending interrupt");
        In(restored, Iir).Should().Be(0xC4);
        Enumerable.Range(0, 4).Select(_ => In(restored, Data)).Should().Equal("ello"u8.ToArray());
        In(restored, Scr).Should().Be(0x77);
        restored.Write(Data, [(byte)'z']);
        sink.Bytes.Should().Equal((byte)'z');
    }

    [Fact]
    public void State_records_compare_by_value()
    {
        _serial.EnqueueInput("ab"u8);
        Serial8250State a = _serial.Save();
        Serial8250State b = _serial.Save();
        a.Should().Be(b);
        a.GetHashCode().Should().Be(b.GetHashCode());
        (a with { RxFifo = ImmutableArray.Create((byte)'a') }).Should().NotBe(b);
    }

    public static TheoryData<string, Serial8250State> InvalidStates()
    {
        var good = new Serial8250State(0, 0, 3, 0, 0, 12, 0, false, false, 0, ImmutableArray<byte>.Empty);
        return new TheoryData<string, Serial8250State>
        {
            { "IER", good with { InterruptEnable = 0x10 } },
            { "MCR", good with { ModemControl = 0x20 } },
            { "FCR", good with { FifoControl = 0x03 } },
            { "FCR", good with { FifoControl = 0x40 } },
            { "MSR delta", good with { ModemStatusDelta = 0x10 } },
            { "RX FIFO holds 65", good with { RxFifo = ImmutableArray.Create(new byte[65]) } },
            { "RX FIFO is missing", good with { RxFifo = default } },
        };
    }

    [Theory]
    [MemberData(nameof(InvalidStates))]
    public void Restore_rejects_invalid_state(string reason, Serial8250State state)
    {
        Action restore = () => Serial8250.Restore(state, _sink, _irq);
        restore.Should().Throw<DeviceStateException>().WithMessage($"invalid Serial8250 state: *{reason}*");
    }

    [Fact]
    public void Restore_accepts_a_full_fifo()
    {
        var state = new Serial8250State(1, 0xC9, 3, 0x1F, 0, 12, 0, true, true, 0x0F,
            ImmutableArray.Create(new byte[64]));
        Serial8250 serial = Serial8250.Restore(state, _sink, _irq);
        serial.Save().Should().Be(state);
        _irq.Level.Should().BeTrue();
    }

    [Fact]
    public void Restore_rejects_null_state()
    {
        Action restore = () => Serial8250.Restore(null!, _sink, _irq);
        restore.Should().Throw<ArgumentNullException>();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_register_traffic_never_throws_or_exceeds_bounds(int seed)
    {
        var random = new Random(seed);
        int[] widths = [0, 1, 1, 1, 1, 2, 3, 4, 8];
        byte[] buffer = new byte[8];
        Serial8250 serial = _serial;
        long writes = 0;
        for (int step = 0; step < 20_000; step++)
        {
            ulong offset = random.Next(20) == 0 ? (ulong)random.NextInt64() : (ulong)random.Next(10);
            Span<byte> data = buffer.AsSpan(0, widths[random.Next(widths.Length)]);
            switch (random.Next(10))
            {
                case < 4:
                    serial.Read(offset, data);
                    break;
                case < 8:
                    random.NextBytes(data);
                    serial.Write(offset, data);
                    writes += data.Length;
                    break;
                case 8:
                    byte[] input = new byte[random.Next(100)];
                    random.NextBytes(input);
                    int accepted = serial.EnqueueInput(input);
                    accepted.Should().BeInRange(0, Math.Min(input.Length, Serial8250.RxFifoCapacity));
                    break;
                default:
                    Serial8250State state = serial.Save();
                    state.RxFifo.Length.Should().BeLessThanOrEqualTo(Serial8250.RxFifoCapacity);
                    serial = Serial8250.Restore(state, _sink, _irq);
                    serial.Save().Should().Be(state);
                    break;
            }
            serial.RxFreeSpace.Should().BeInRange(0, Serial8250.RxFifoCapacity);
            _irq.Level.Should().Be(serial.InterruptAsserted);
        }
        _sink.Bytes.Count.Should().BeLessThanOrEqualTo((int)writes);
        (In(serial, Lsr) & 0x60).Should().Be(0x60, "the transmitter is always empty");
    }
}
