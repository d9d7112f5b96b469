using System.Collections.Immutable;
using MiniVmm.Core.Bus;
using MiniVmm.Core.State;

namespace MiniVmm.Devices.Legacy;

/// <summary>
/// The PC's CMOS real-time clock (Motorola MC146818, as on the PC/AT and QEMU's <c>mc146818rtc</c>): an index port
/// (0x70) and a data port (0x71) in front of 128 bytes whose first ones are the clock. The time is never stored: each
/// read of a time register computes it from the host's UTC clock plus a guest offset in whole seconds, so the clock runs
/// while the VM does, while it is paused and across a snapshot (QEMU's default <c>-rtc base=utc,clock=host</c>).
/// </summary>
/// <remarks>
/// <para>Registers (the low 7 bits of the last index write select one; bit 7, the NMI mask, is kept but not acted on
/// and the index port reads 0xFF, as QEMU's):</para>
/// <list type="bullet">
/// <item>0x00 seconds, 0x02 minutes, 0x04 hours, 0x06 weekday (1 = Sunday), 0x07 day, 0x08 month, 0x09 year, 0x32
/// century (the FADT's CENTURY field names it): BCD or binary as register B's DM bit says, hours 0-23 or 1-12 with bit
/// 7 = PM as its 24/12 bit says. The weekday follows from the date: a guest write of a valid weekday is accepted but
/// does not move the clock.</item>
/// <item>Writing a time register, with or without SET, sets the clock: the other fields come from the current time
/// (or from the frozen one while SET is on) and the new offset is the resulting time minus host now.</item>
/// <item>0x0A register A: UIP (bit 7) always reads 0, so a guest waiting for the end of an update never waits (there is
/// no update cycle); the divider and rate bits are stored as written and not acted on. Power-on 0x26.</item>
/// <item>0x0B register B: stored as written. SET (bit 7) freezes the time registers at the moment it is set (setting it
/// clears UIE, as the MC146818 does); the guest writes the new time field by field (each byte is checked on its own,
/// since a half-written date may be impossible), and clearing SET makes the whole frozen time the clock's. Power-on
/// 0x02: 24-hour, BCD.</item>
/// <item>0x0C register C reads 0 and 0x0D register D reads 0x80 (valid RAM and time); writes to both are ignored
/// (counted). No interrupt is modelled: alarm, periodic and update-ended interrupts on IRQ 8 never fire and PIE, AIE
/// and UIE in register B do nothing. Linux reads the time by polling and does not need them.</item>
/// <item>The alarm registers (0x01, 0x03, 0x05) and every other byte up to 0x7F are plain CMOS RAM.</item>
/// </list>
/// <para>A guest-written time is checked: a byte that is not a BCD number in BCD mode, a field out of range (minute 60,
/// hour 13 in 12-hour mode, month 0…), a date that does not exist (31 February), a year before 1900 or past 9999 is
/// ignored and counted in <see cref="InvalidWrites"/>; the clock keeps its offset. The guest clock saturates at the ends
/// of that range instead of wrapping. Every access width is handled byte by byte: a 2-byte write at offset 0 is an index
/// write and then a data write.</para>
/// <para>Threat model:</para>
/// <code>
/// | Input                          | Controlled by | Bound / handling                                              |
/// |--------------------------------|---------------|---------------------------------------------------------------|
/// | index value                    | guest         | masked to 7 bits: always one of the 128 registers             |
/// | access offset/width            | guest         | byte by byte; bytes outside the 2 ports read 0xFF, writes are |
/// |                                |               | ignored and counted                                           |
/// | written time (digits, date)    | guest         | checked field by field and as a date; invalid: ignored,       |
/// |                                |               | counted, never throws; the offset stays within ±MaxOffset     |
/// | written registers A-D          | guest         | A: UIP masked; B: any value; C, D: read-only, counted         |
/// | access rate                    | guest         | each access is O(1); no timers, no interrupts, no queue       |
/// | host clock                     | host          | any value: the guest time saturates to 1900-9999              |
/// | saved state                    | snapshot file | length, booleans, index, UIP, reserved RAM slots, time slots  |
/// |                                |               | and the offset range are checked; a bad section is refused    |
/// </code>
/// </remarks>
public sealed class CmosRtc : IBusDevice, IPersistent<CmosRtc, TimeProvider>
{
    /// <summary>I/O port base (the index port; the data port follows).</summary>
    public const ushort DefaultPort = 0x70;

    /// <summary>Size of the window on the PIO bus: ports 0x70-0x71.</summary>
    public const ulong RegisterWindowSize = 2;

    /// <summary>Bytes of CMOS behind the data port.</summary>
    public const int RamSize = 128;

    public const int RegSeconds = 0x00;
    public const int RegSecondsAlarm = 0x01;
    public const int RegMinutes = 0x02;
    public const int RegMinutesAlarm = 0x03;
    public const int RegHours = 0x04;
    public const int RegHoursAlarm = 0x05;
    public const int RegWeekday = 0x06;
    public const int RegDay = 0x07;
    public const int RegMonth = 0x08;
    public const int RegYear = 0x09;
    public const int RegA = 0x0A;
    public const int RegB = 0x0B;
    public const int RegC = 0x0C;
    public const int RegD = 0x0D;

    /// <summary>The century register (the register the FADT's CENTURY field names, as QEMU's).</summary>
    public const int RegCentury = 0x32;

    /// <summary>The registers that show the time (and, while SET is on, hold the frozen time).</summary>
    public static ReadOnlySpan<int> TimeRegisters => [RegSeconds, RegMinutes, RegHours, RegWeekday, RegDay, RegMonth, RegYear, RegCentury];

    public const byte RegisterAUip = 0x80;
    public const byte RegisterAPowerOn = 0x26;
    public const byte RegisterBSet = 0x80;
    public const byte RegisterBUpdateInterruptEnable = 0x10;
    public const byte RegisterBBinary = 0x04;
    public const byte RegisterB24Hour = 0x02;
    public const byte RegisterBPowerOn = RegisterB24Hour;
    public const byte RegisterDValid = 0x80;
    public const byte IndexNmiMask = 0x80;
    private const byte HourPm = 0x80;

    /// <summary>The earliest and latest year the clock shows.</summary>
    public const int MinYear = 1900, MaxYear = 9999;

    private static readonly long MinSeconds = new DateTimeOffset(MinYear, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();
    private static readonly long MaxSeconds = new DateTimeOffset(MaxYear, 12, 31, 23, 59, 59, TimeSpan.Zero).ToUnixTimeSeconds();

    /// <summary>The largest guest offset, either way: the width of the range the clock shows.</summary>
    public static readonly long MaxOffsetSeconds = MaxSeconds - MinSeconds;

    private readonly TimeProvider _clock;
    private readonly byte[] _ram = new byte[RamSize];
    private byte _index;
    private bool _nmiMasked;
    private byte _regA = RegisterAPowerOn;
    private byte _regB = RegisterBPowerOn;
    private long _offset;
    private long _invalidWrites;
    private long _ignoredWrites;

    /// <param name="clock">The host clock (its UTC time); tests inject a fixed one.</param>
    public CmosRtc(TimeProvider clock)
    {
        _clock = clock ?? throw new ArgumentNullException(nameof(clock));
    }

    /// <summary>Guest time minus host UTC time, in whole seconds.</summary>
    public long OffsetSeconds => Volatile.Read(ref _offset);

    /// <summary>Bit 7 of the last index write.</summary>
    public bool NmiMasked => _nmiMasked;

    /// <summary>Guest writes of a time that was not valid (bad BCD digit, field out of range, impossible date).</summary>
    public long InvalidWrites => Interlocked.Read(ref _invalidWrites);

    /// <summary>Writes that had no effect: to the read-only registers C and D, or outside the two ports.</summary>
    public long IgnoredWrites => Interlocked.Read(ref _ignoredWrites);

    /// <summary>The running clock: host now + the offset (while SET is on the guest reads the frozen registers instead).</summary>
    public DateTimeOffset GuestNow => DateTimeOffset.FromUnixTimeSeconds(GuestSeconds());

    public void Read(ulong offset, Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            ulong port = offset + (ulong)i;
            data[i] = port == 1 && offset <= 1 ? ReadRegister(_index) : (byte)0xFF;
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            ulong port = offset + (ulong)i;
            if (offset > 1 || port > 1)
            {
                Interlocked.Increment(ref _ignoredWrites);
            }
            else if (port == 0)
            {
                _index = (byte)(data[i] & ~IndexNmiMask);
                _nmiMasked = (data[i] & IndexNmiMask) != 0;
            }
            else
            {
                WriteRegister(_index, data[i]);
            }
        }
    }

    private bool Frozen => (_regB & RegisterBSet) != 0;

    private byte ReadRegister(int reg) => reg switch
    {
        RegA => _regA,
        RegB => _regB,
        RegC => 0,
        RegD => RegisterDValid,
        _ when IsTimeRegister(reg) && !Frozen => TimeImage(GuestSeconds(), _regB)[SlotOf(reg)],
        _ => _ram[reg],
    };

    private void WriteRegister(int reg, byte value)
    {
        switch (reg)
        {
            case RegA:
                _regA = (byte)(value & ~RegisterAUip);
                break;
            case RegB:
                WriteRegisterB(value);
                break;
            case RegC or RegD:
                Interlocked.Increment(ref _ignoredWrites);
                break;
            case var _ when IsTimeRegister(reg):
                if (!FieldValid(reg, value, _regB))
                {
                    Interlocked.Increment(ref _invalidWrites);
                }
                else if (Frozen)
                {
                    _ram[reg] = value;
                }
                else
                {
                    byte[] image = TimeImage(GuestSeconds(), _regB);
                    image[SlotOf(reg)] = value;
                    SetClockFrom(image, _regB);
                }
                break;
            default:
                _ram[reg] = value;
                break;
        }
    }

    private void WriteRegisterB(byte value)
    {
        bool set = (value & RegisterBSet) != 0;
        if (set) value = (byte)(value & ~RegisterBUpdateInterruptEnable);
        if (set && !Frozen)
        {
            // Freeze: the time registers hold the current time, in the mode the new value selects.
            byte[] image = TimeImage(GuestSeconds(), value);
            for (int s = 0; s < image.Length; s++) _ram[TimeRegisters[s]] = image[s];
        }
        else if (!set && Frozen)
        {
            // Thaw: the frozen (and perhaps guest-written) time becomes the clock's, read in the new value's mode.
            byte[] image = new byte[TimeRegisters.Length];
            for (int s = 0; s < image.Length; s++)
            {
                image[s] = _ram[TimeRegisters[s]];
                _ram[TimeRegisters[s]] = 0;
            }
            SetClockFrom(image, value);
        }
        _regB = value;
    }

    /// <summary>Sets the offset from a full time image; an invalid one is counted and changes nothing.</summary>
    private void SetClockFrom(byte[] image, byte regB)
    {
        long? seconds = DecodeImage(image, regB);
        if (seconds is null)
        {
            Interlocked.Increment(ref _invalidWrites);
            return;
        }
        Volatile.Write(ref _offset, Math.Clamp(seconds.Value - HostSeconds(), -MaxOffsetSeconds, MaxOffsetSeconds));
    }

    private long HostSeconds() => _clock.GetUtcNow().ToUnixTimeSeconds();

    private long GuestSeconds() => Math.Clamp(HostSeconds() + OffsetSeconds, MinSeconds, MaxSeconds);

    private static bool IsTimeRegister(int reg) => reg is RegSeconds or RegMinutes or RegHours or RegWeekday or RegDay or RegMonth
        or RegYear or RegCentury;

    private static int SlotOf(int reg) => reg switch
    {
        RegSeconds => 0,
        RegMinutes => 1,
        RegHours => 2,
        RegWeekday => 3,
        RegDay => 4,
        RegMonth => 5,
        RegYear => 6,
        RegCentury => 7,
        _ => throw new ArgumentOutOfRangeException(nameof(reg)),
    };

    /// <summary>The time registers' bytes (in <see cref="TimeRegisters"/> order) for a time, in the mode of
    /// <paramref name="regB"/>.</summary>
    private static byte[] TimeImage(long unixSeconds, byte regB)
    {
        bool binary = (regB & RegisterBBinary) != 0;
        DateTime t = DateTimeOffset.FromUnixTimeSeconds(unixSeconds).UtcDateTime;
        byte hour;
        if ((regB & RegisterB24Hour) != 0)
        {
            hour = ToField(t.Hour, binary);
        }
        else
        {
            int h12 = t.Hour % 12 == 0 ? 12 : t.Hour % 12;
            hour = (byte)(ToField(h12, binary) | (t.Hour >= 12 ? HourPm : 0));
        }
        return
        [
            ToField(t.Second, binary), ToField(t.Minute, binary), hour, ToField((int)t.DayOfWeek + 1, binary),
            ToField(t.Day, binary), ToField(t.Month, binary), ToField(t.Year % 100, binary), ToField(t.Year / 100, binary),
        ];
    }

    /// <summary>The time a full image stands for, or null when a field is invalid or the date does not exist. The
    /// weekday is checked for range only.</summary>
    private static long? DecodeImage(byte[] image, byte regB)
    {
        for (int s = 0; s < image.Length; s++)
            if (!FieldValid(TimeRegisters[s], image[s], regB))
                return null;
        bool binary = (regB & RegisterBBinary) != 0;
        int year = FromField(image[7], binary) * 100 + FromField(image[6], binary);
        int month = FromField(image[5], binary);
        int day = FromField(image[4], binary);
        if (year < MinYear || year > MaxYear || day > DateTime.DaysInMonth(year, month))
            return null;
        int hour = HourOf(image[2], regB);
        var t = new DateTimeOffset(year, month, day, hour, FromField(image[1], binary), FromField(image[0], binary), TimeSpan.Zero);
        return t.ToUnixTimeSeconds();
    }

    /// <summary>Whether one time register's byte is a valid value on its own in the mode of <paramref name="regB"/>.</summary>
    private static bool FieldValid(int reg, byte value, byte regB)
    {
        bool binary = (regB & RegisterBBinary) != 0;
        if (reg == RegHours)
        {
            if ((regB & RegisterB24Hour) != 0)
                return (value & HourPm) == 0 && FromField(value, binary) is >= 0 and <= 23;
            return FromField((byte)(value & ~HourPm), binary) is >= 1 and <= 12;
        }
        int v = FromField(value, binary);
        return reg switch
        {
            RegSeconds or RegMinutes => v is >= 0 and <= 59,
            RegWeekday => v is >= 1 and <= 7,
            RegDay => v is >= 1 and <= 31,
            RegMonth => v is >= 1 and <= 12,
            RegYear => v is >= 0 and <= 99,
            RegCentury => v is >= MinYear / 100 and <= MaxYear / 100,
            _ => false,
        };
    }

    private static int HourOf(byte value, byte regB)
    {
        bool binary = (regB & RegisterBBinary) != 0;
        if ((regB & RegisterB24Hour) != 0) return FromField(value, binary);
        int h12 = FromField((byte)(value & ~HourPm), binary);
        return h12 % 12 + ((value & HourPm) != 0 ? 12 : 0);
    }

    private static byte ToField(int value, bool binary) => binary ? (byte)value : (byte)((value / 10) << 4 | value % 10);

    /// <summary>A field's value, or -1 for a byte that is not a BCD number in BCD mode.</summary>
    private static int FromField(byte value, bool binary)
    {
        if (binary) return value;
        int hi = value >> 4, lo = value & 0x0F;
        return hi > 9 || lo > 9 ? -1 : hi * 10 + lo;
    }

    public CmosRtcState Save() => new(_index, _nmiMasked, _regA, _regB, ImmutableArray.Create(_ram), OffsetSeconds);

    public static ushort StateVersion => 1;

    /// <summary>Snapshots written before the RTC existed have no section for it: such a VM gets a fresh RTC (host time,
    /// power-on registers), which is what it would have had on a boot with this MiniVmm.</summary>
    public static bool CreatedFreshWhenAbsent => true;

    /// <param name="clock">The host clock.</param>
    public static CmosRtc Create(TimeProvider clock) => new(clock);

    public byte[] SaveState() => Save().Encode();

    public static CmosRtc RestoreState(TimeProvider clock, ushort version, ReadOnlySpan<byte> state) =>
        Restore(CmosRtcState.Decode(state), clock);

    /// <summary>Rebuilds an RTC from <paramref name="state"/>, validated as strictly as guest input; its clock runs on
    /// from host now + the saved offset.</summary>
    /// <exception cref="DeviceStateException">The state is impossible for this device.</exception>
    public static CmosRtc Restore(CmosRtcState state, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(state);
        Validate(state);
        var rtc = new CmosRtc(clock)
        {
            _index = state.Index,
            _nmiMasked = state.NmiMasked,
            _regA = state.RegisterA,
            _regB = state.RegisterB,
            _offset = state.OffsetSeconds,
        };
        state.Ram.CopyTo(rtc._ram);
        return rtc;
    }

    private static void Validate(CmosRtcState state)
    {
        const string Device = nameof(CmosRtc);
        if (state.Ram.IsDefault || state.Ram.Length != RamSize)
            throw new DeviceStateException(Device, $"RAM of {(state.Ram.IsDefault ? 0 : state.Ram.Length)} bytes; {RamSize} expected");
        if (state.Index >= RamSize)
            throw new DeviceStateException(Device, $"index 0x{state.Index:x2} is past register 0x7f");
        if ((state.RegisterA & RegisterAUip) != 0)
            throw new DeviceStateException(Device, $"register A 0x{state.RegisterA:x2} has UIP set");
        for (int r = RegA; r <= RegD; r++)
            if (state.Ram[r] != 0)
                throw new DeviceStateException(Device, $"RAM slot 0x{r:x2} of register {(char)('A' + r - RegA)} holds 0x{state.Ram[r]:x2}; 0 expected");
        if ((state.RegisterB & RegisterBSet) == 0)
        {
            foreach (int r in TimeRegisters)
                if (state.Ram[r] != 0)
                    throw new DeviceStateException(Device, $"time register 0x{r:x2} holds 0x{state.Ram[r]:x2} while SET is off; 0 expected");
        }
        else if ((state.RegisterB & RegisterBUpdateInterruptEnable) != 0)
        {
            throw new DeviceStateException(Device, $"register B 0x{state.RegisterB:x2} has both SET and UIE");
        }
        if (state.OffsetSeconds < -MaxOffsetSeconds || state.OffsetSeconds > MaxOffsetSeconds)
            throw new DeviceStateException(Device, $"offset {state.OffsetSeconds} s is outside ±{MaxOffsetSeconds} s");
    }
}
