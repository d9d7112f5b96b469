using System.Collections.Immutable;
using MiniVmm.Devices.Legacy;

namespace MiniVmm.Devices.Tests.Legacy;

public sealed class CmosRtcTests
{
    /// <summary>A host clock the test moves by hand.</summary>
    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;
        public override DateTimeOffset GetUtcNow() => Now;
        public void Advance(TimeSpan by) => Now += by;
    }

    // A Wednesday afternoon, with a fraction of a second the RTC must drop.
    private static readonly DateTimeOffset Start = new(2026, 12, 2, 15, 30, 45, 600, TimeSpan.Zero);

    private readonly ManualClock _clock = new(Start);
    private readonly CmosRtc _rtc;

    public CmosRtcTests()
    {
        _rtc = new CmosRtc(_clock);
    }

    private byte Get(int reg)
    {
        _rtc.Write(0, [(byte)reg]);
        Span<byte> b = stackalloc byte[1];
        _rtc.Read(1, b);
        return b[0];
    }

    private void Set(int reg, byte value)
    {
        _rtc.Write(0, [(byte)reg]);
        _rtc.Write(1, [value]);
    }

    private byte[] TimeBytes() =>
        [Get(CmosRtc.RegSeconds), Get(CmosRtc.RegMinutes), Get(CmosRtc.RegHours), Get(CmosRtc.RegWeekday),
         Get(CmosRtc.RegDay), Get(CmosRtc.RegMonth), Get(CmosRtc.RegYear), Get(CmosRtc.RegCentury)];

    [Fact]
    public void Window_covers_ports_0x70_and_0x71()
    {
        CmosRtc.DefaultPort.Should().Be(0x70);
        CmosRtc.RegisterWindowSize.Should().Be(2ul);
    }

    [Fact]
    public void Power_on_registers_are_those_of_a_pc()
    {
        Get(CmosRtc.RegA).Should().Be(0x26, "32.768 kHz divider, 1024 Hz rate, UIP clear");
        Get(CmosRtc.RegB).Should().Be(0x02, "24-hour, BCD, no interrupts");
        Get(CmosRtc.RegC).Should().Be(0, "no interrupt flags");
        Get(CmosRtc.RegD).Should().Be(0x80, "valid RAM and time");
        Span<byte> index = stackalloc byte[1];
        _rtc.Read(0, index);
        index[0].Should().Be(0xFF, "the index port is write-only");
        _rtc.OffsetSeconds.Should().Be(0);
    }

    [Fact]
    public void Time_reads_in_bcd_by_default()
    {
        TimeBytes().Should().Equal(0x45, 0x30, 0x15, 0x04, 0x02, 0x12, 0x26, 0x20);
    }

    [Fact]
    public void Time_reads_in_binary_when_dm_is_set()
    {
        Set(CmosRtc.RegB, CmosRtc.RegisterBBinary | CmosRtc.RegisterB24Hour);
        TimeBytes().Should().Equal(45, 30, 15, 4, 2, 12, 26, 20);
    }

    [Theory]
    [InlineData(15, false, 0x83)]
    [InlineData(0, false, 0x12)]
    [InlineData(12, false, 0x92)]
    [InlineData(11, false, 0x11)]
    [InlineData(23, true, 11 | 0x80)]
    [InlineData(0, true, 12)]
    public void Twelve_hour_mode_shows_1_to_12_with_bit_7_for_pm(int hour, bool binary, byte expected)
    {
        _clock.Now = new DateTimeOffset(2026, 12, 2, hour, 5, 0, TimeSpan.Zero);
        Set(CmosRtc.RegB, binary ? CmosRtc.RegisterBBinary : (byte)0);
        Get(CmosRtc.RegHours).Should().Be(expected);
    }

    [Fact]
    public void The_clock_runs_with_the_host()
    {
        _clock.Advance(TimeSpan.FromSeconds(10));
        Get(CmosRtc.RegSeconds).Should().Be(0x55);
        _clock.Advance(TimeSpan.FromDays(30));
        Get(CmosRtc.RegMonth).Should().Be(0x01);
        Get(CmosRtc.RegYear).Should().Be(0x27);
    }

    [Fact]
    public void A_guest_written_time_register_moves_the_offset()
    {
        Set(CmosRtc.RegYear, 0x30);
        _rtc.OffsetSeconds.Should().Be((long)(new DateTime(2030, 12, 2) - new DateTime(2026, 12, 2)).TotalSeconds);
        TimeBytes().Should().Equal(0x45, 0x30, 0x15, 0x02, 0x02, 0x12, 0x30, 0x20); // 2 December 2030 is a Monday

        Set(CmosRtc.RegMinutes, 0x00);
        Get(CmosRtc.RegMinutes).Should().Be(0x00);
        Get(CmosRtc.RegHours).Should().Be(0x15);
        _clock.Advance(TimeSpan.FromSeconds(20));
        Get(CmosRtc.RegMinutes).Should().Be(0x01, "the written time runs on");
        Get(CmosRtc.RegSeconds).Should().Be(0x05);
        _rtc.InvalidWrites.Should().Be(0);
    }

    [Fact]
    public void A_written_weekday_is_accepted_but_follows_the_date()
    {
        Set(CmosRtc.RegWeekday, 0x01);
        _rtc.InvalidWrites.Should().Be(0);
        _rtc.OffsetSeconds.Should().Be(0);
        Get(CmosRtc.RegWeekday).Should().Be(0x04);
    }

    [Fact]
    public void Set_freezes_the_registers_and_clearing_it_starts_the_written_time()
    {
        Set(CmosRtc.RegB, CmosRtc.RegisterBSet | CmosRtc.RegisterB24Hour);
        _clock.Advance(TimeSpan.FromSeconds(5));
        Get(CmosRtc.RegSeconds).Should().Be(0x45, "frozen while SET is on");

        // 2031-03-31 08:09:10, written field by field as Linux does: day 31 before month 3 is a February 31 for a while.
        Set(CmosRtc.RegSeconds, 0x10);
        Set(CmosRtc.RegMinutes, 0x09);
        Set(CmosRtc.RegHours, 0x08);
        _clock.Now = _clock.Now.AddMonths(2); // the host clock moves on meanwhile
        Set(CmosRtc.RegDay, 0x31);
        Set(CmosRtc.RegMonth, 0x03);
        Set(CmosRtc.RegYear, 0x31);
        TimeBytes().Should().Equal(0x10, 0x09, 0x08, 0x04, 0x31, 0x03, 0x31, 0x20);
        _rtc.OffsetSeconds.Should().Be(0, "nothing moves before SET is cleared");

        Set(CmosRtc.RegB, CmosRtc.RegisterB24Hour);
        _rtc.InvalidWrites.Should().Be(0);
        _rtc.GuestNow.Should().Be(new DateTimeOffset(2031, 3, 31, 8, 9, 10, TimeSpan.Zero));
        _clock.Advance(TimeSpan.FromSeconds(3));
        Get(CmosRtc.RegSeconds).Should().Be(0x13);
        Get(CmosRtc.RegWeekday).Should().Be(0x02, "31 March 2031 is a Monday");
        _rtc.Save().Ram.AsSpan()[CmosRtc.RegSeconds].Should().Be(0, "the frozen copy is gone");
    }

    [Fact]
    public void Setting_set_clears_uie()
    {
        Set(CmosRtc.RegB, 0x80 | CmosRtc.RegisterBUpdateInterruptEnable | 0x02);
        Get(CmosRtc.RegB).Should().Be(0x82);
        Set(CmosRtc.RegB, 0x12);
        Get(CmosRtc.RegB).Should().Be(0x12, "UIE is kept when SET is off");
    }

    [Fact]
    public void An_impossible_date_when_set_is_cleared_is_ignored_and_counted()
    {
        _clock.Now = new DateTimeOffset(2025, 2, 10, 0, 0, 0, TimeSpan.Zero);
        Set(CmosRtc.RegB, 0x82);
        Set(CmosRtc.RegDay, 0x29);
        Set(CmosRtc.RegB, 0x02);
        _rtc.InvalidWrites.Should().Be(1, "2025 has no 29 February");
        _rtc.OffsetSeconds.Should().Be(0);
        Get(CmosRtc.RegDay).Should().Be(0x10);
    }

    [Theory]
    [InlineData(CmosRtc.RegSeconds, 0x5A, 0x02)]
    [InlineData(CmosRtc.RegSeconds, 0x60, 0x02)]
    [InlineData(CmosRtc.RegMinutes, 0xA0, 0x02)]
    [InlineData(CmosRtc.RegHours, 0x24, 0x02)]
    [InlineData(CmosRtc.RegHours, 0x95, 0x02)]
    [InlineData(CmosRtc.RegHours, 0x13, 0x00)]
    [InlineData(CmosRtc.RegHours, 0x80, 0x00)]
    [InlineData(CmosRtc.RegWeekday, 0x08, 0x02)]
    [InlineData(CmosRtc.RegWeekday, 0x00, 0x02)]
    [InlineData(CmosRtc.RegDay, 0x00, 0x02)]
    [InlineData(CmosRtc.RegDay, 0x32, 0x02)]
    [InlineData(CmosRtc.RegMonth, 0x13, 0x02)]
    [InlineData(CmosRtc.RegMonth, 0x00, 0x02)]
    [InlineData(CmosRtc.RegYear, 0x9A, 0x02)]
    [InlineData(CmosRtc.RegYear, 100, 0x06)]
    [InlineData(CmosRtc.RegCentury, 0x18, 0x02)]
    [InlineData(CmosRtc.RegSeconds, 60, 0x06)]
    [InlineData(CmosRtc.RegHours, 0x80 | 5, 0x06)]
    public void Invalid_time_bytes_are_ignored_and_counted(int reg, byte value, byte regB)
    {
        Set(CmosRtc.RegB, regB);
        _rtc.Invoking(_ => Set(reg, value)).Should().NotThrow();
        _rtc.InvalidWrites.Should().Be(1);
        _rtc.OffsetSeconds.Should().Be(0);

        Set(CmosRtc.RegB, (byte)(regB | CmosRtc.RegisterBSet));
        byte frozen = Get(reg);
        Set(reg, value);
        _rtc.InvalidWrites.Should().Be(2, "checked while SET is on too");
        Get(reg).Should().Be(frozen);
    }

    [Fact]
    public void An_impossible_date_written_without_set_is_ignored()
    {
        _clock.Now = new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero);
        Set(CmosRtc.RegDay, 0x31);
        _rtc.InvalidWrites.Should().Be(1, "November has 30 days");
        _rtc.OffsetSeconds.Should().Be(0);
    }

    [Fact]
    public void The_clock_saturates_at_the_last_second_of_9999()
    {
        Set(CmosRtc.RegCentury, 0x99);
        Set(CmosRtc.RegYear, 0x99);
        Set(CmosRtc.RegMonth, 0x12);
        Set(CmosRtc.RegDay, 0x31);
        Set(CmosRtc.RegHours, 0x23);
        Set(CmosRtc.RegMinutes, 0x59);
        _clock.Advance(TimeSpan.FromDays(1000));
        TimeBytes().Should().Equal(0x59, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x99);
        _rtc.InvalidWrites.Should().Be(0);
    }

    [Fact]
    public void Registers_a_c_and_d_keep_their_rules()
    {
        Set(CmosRtc.RegA, 0xA5);
        Get(CmosRtc.RegA).Should().Be(0x25, "UIP is never set");
        Set(CmosRtc.RegC, 0xFF);
        Set(CmosRtc.RegD, 0x00);
        Get(CmosRtc.RegC).Should().Be(0);
        Get(CmosRtc.RegD).Should().Be(0x80);
        _rtc.IgnoredWrites.Should().Be(2);
    }

    [Fact]
    public void Alarm_registers_and_the_rest_of_the_cmos_are_plain_ram()
    {
        var plain = Enumerable.Range(0, CmosRtc.RamSize)
            .Where(r => r is CmosRtc.RegSecondsAlarm or CmosRtc.RegMinutesAlarm or CmosRtc.RegHoursAlarm
                or (>= 0x0E and not CmosRtc.RegCentury)).ToArray();
        plain.Should().HaveCount(3 + 0x72 - 1);
        foreach (int r in plain) Set(r, (byte)(r ^ 0xA5));
        foreach (int r in plain) Get(r).Should().Be((byte)(r ^ 0xA5), $"register 0x{r:x2}");
        _rtc.OffsetSeconds.Should().Be(0);
        _rtc.InvalidWrites.Should().Be(0);
    }

    [Fact]
    public void The_nmi_bit_is_kept_apart_from_the_index()
    {
        Set(0x40, 0x77);
        _rtc.Write(0, [0x80 | 0x40]);
        _rtc.NmiMasked.Should().BeTrue();
        Span<byte> b = stackalloc byte[1];
        _rtc.Read(1, b);
        b[0].Should().Be(0x77, "bit 7 is not part of the index");
        _rtc.Save().Index.Should().Be(0x40);
        _rtc.Save().NmiMasked.Should().BeTrue();
        _rtc.Write(0, [0x40]);
        _rtc.NmiMasked.Should().BeFalse();
    }

    [Fact]
    public void Wide_accesses_are_split_into_byte_ports()
    {
        _rtc.Write(0, [0x20, 0x5C]);
        Get(0x20).Should().Be(0x5C);
        byte[] data = new byte[2];
        _rtc.Read(0, data);
        data.Should().Equal(0xFF, 0x5C);
        _rtc.Write(1, [0x11, 0x22]);
        Get(0x20).Should().Be(0x11);
        _rtc.IgnoredWrites.Should().Be(1, "the second byte lies past the window");
    }

    [Fact]
    public void State_round_trips_and_the_restored_clock_runs_from_host_now()
    {
        Set(CmosRtc.RegYear, 0x40);
        Set(CmosRtc.RegA, 0x2F);
        Set(CmosRtc.RegB, CmosRtc.RegisterBBinary | CmosRtc.RegisterB24Hour | 0x40);
        Set(CmosRtc.RegHoursAlarm, 0x12);
        Set(0x7F, 0xEE);
        _rtc.Write(0, [0x80 | 0x2A]);
        CmosRtcState state = _rtc.Save();
        byte[] bytes = _rtc.SaveState();
        bytes.Should().HaveCount(CmosRtcState.EncodedLength).And.HaveCount(140);
        CmosRtcState.Decode(bytes).Should().Be(state);

        _clock.Advance(TimeSpan.FromHours(1));
        CmosRtc restored = CmosRtc.RestoreState(_clock, CmosRtc.StateVersion, bytes);
        restored.Save().Should().Be(state);
        restored.GuestNow.Should().Be(new DateTimeOffset(2040, 12, 2, 16, 30, 45, TimeSpan.Zero), "the clock ran on while saved");
        restored.SaveState().Should().Equal(bytes);
    }

    [Fact]
    public void State_round_trips_with_set_on()
    {
        Set(CmosRtc.RegB, 0x82);
        Set(CmosRtc.RegMinutes, 0x01);
        byte[] bytes = _rtc.SaveState();
        CmosRtc restored = CmosRtc.RestoreState(_clock, 1, bytes);
        restored.Write(0, [CmosRtc.RegMinutes]);
        byte[] b = new byte[1];
        restored.Read(1, b);
        b[0].Should().Be(0x01);
        restored.Write(0, [CmosRtc.RegB]);
        restored.Write(1, [0x02]);
        restored.GuestNow.Should().Be(new DateTimeOffset(2026, 12, 2, 15, 1, 45, TimeSpan.Zero));
    }

    public static TheoryData<string, Func<byte[], byte[]>> MalformedStates => new()
    {
        { "empty", _ => [] },
        { "truncated", s => s[..^1] },
        { "longer", s => [.. s, 0] },
        { "NMI field 2", s => With(s, 1, 2) },
        { "index 0x80", s => With(s, 0, 0x80) },
        { "UIP set", s => With(s, 2, 0xA6) },
        { "register C slot", s => With(s, 4 + CmosRtc.RegC, 1) },
        { "register A slot", s => With(s, 4 + CmosRtc.RegA, 0x26) },
        { "time slot without SET", s => With(s, 4 + CmosRtc.RegSeconds, 0x12) },
        { "century slot without SET", s => With(s, 4 + CmosRtc.RegCentury, 0x20) },
        { "SET with UIE", s => With(s, 3, 0x92) },
        { "offset too large", s => WithOffset(s, CmosRtc.MaxOffsetSeconds + 1) },
        { "offset too small", s => WithOffset(s, long.MinValue) },
    };

    private static byte[] With(byte[] s, int at, byte value)
    {
        byte[] copy = [.. s];
        copy[at] = value;
        return copy;
    }

    private static byte[] WithOffset(byte[] s, long offset)
    {
        byte[] copy = [.. s];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(copy.AsSpan(4 + CmosRtc.RamSize), offset);
        return copy;
    }

    [Theory]
    [MemberData(nameof(MalformedStates))]
    public void Malformed_state_is_refused(string name, Func<byte[], byte[]> corrupt)
    {
        byte[] good = _rtc.SaveState();
        CmosRtc.RestoreState(_clock, 1, good).Should().NotBeNull();
        FluentActions.Invoking(() => CmosRtc.RestoreState(_clock, 1, corrupt(good)))
            .Should().Throw<DeviceStateException>(name).Which.Device.Should().Be(nameof(CmosRtc));
    }

    [Fact]
    public void A_state_record_with_short_ram_is_refused()
    {
        var state = _rtc.Save() with { Ram = ImmutableArray.Create(new byte[127]) };
        FluentActions.Invoking(() => CmosRtc.Restore(state, _clock)).Should().Throw<DeviceStateException>();
        FluentActions.Invoking(() => CmosRtc.Restore(null!, _clock)).Should().Throw<ArgumentNullException>();
    }

    [Fact]
    public void A_fresh_rtc_stands_in_for_a_missing_section()
    {
        CmosRtc.CreatedFreshWhenAbsent.Should().BeTrue();
    }

    [Theory]
    [InlineData(31)]
    [InlineData(32)]
    public void Random_accesses_never_throw_and_every_saved_state_restores(int seed)
    {
        var random = new Random(seed);
        byte[] buffer = new byte[8];
        for (int i = 0; i < 20_000; i++)
        {
            ulong offset = random.Next(8) == 0 ? (ulong)random.NextInt64() : (ulong)random.Next(3);
            Span<byte> data = buffer.AsSpan(0, random.Next(9));
            if (random.Next(3) == 0)
                _clock.Advance(TimeSpan.FromSeconds(random.Next(-100_000, 100_000)));
            if (random.Next(2) == 0)
            {
                _rtc.Read(offset, data);
            }
            else
            {
                random.NextBytes(data);
                // Steer half the index writes to the clock and control registers.
                if (data.Length > 0 && offset == 0 && random.Next(2) == 0) data[0] = (byte)random.Next(0x0E);
                _rtc.Write(offset, data);
            }
            if (i % 1000 == 0)
                CmosRtc.RestoreState(_clock, 1, _rtc.SaveState()).Save().Should().Be(_rtc.Save());
        }
        _rtc.InvalidWrites.Should().BeGreaterThan(0);
    }
}
