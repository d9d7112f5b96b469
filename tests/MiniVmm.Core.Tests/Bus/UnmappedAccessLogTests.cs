using Microsoft.Extensions.Logging;
using MiniVmm.Core.Bus;
using IoBus = MiniVmm.Core.Bus.Bus;

namespace MiniVmm.Core.Tests.Bus;

public sealed class UnmappedAccessLogTests
{
    private readonly ListLogger _logger = new();
    private readonly ManualTimeProvider _time = new();

    [Fact]
    public void Unmapped_pio_reads_are_all_ones_and_mmio_reads_are_zeros()
    {
        byte[] data = [1, 2, 3, 4];
        UnmappedAccessLog.FillUnmappedRead(BusKind.Pio, data);
        data.Should().Equal(0xFF, 0xFF, 0xFF, 0xFF);
        UnmappedAccessLog.FillUnmappedRead(BusKind.Mmio, data);
        data.Should().Equal(0, 0, 0, 0);
    }

    [Fact]
    public void Read_and_write_helpers_fill_count_and_log_unmapped_accesses()
    {
        var bus = new IoBus(BusKind.Pio);
        var device = new RecordingDevice(0x42);
        bus.Register(0x3F8, 8, device, "serial");
        var log = UnmappedAccessLog.For(bus, _logger, timeProvider: _time);

        byte[] data = new byte[2];
        log.Read(bus, 0x3F8, data);
        data.Should().Equal(0x42, 0x42);
        log.Read(bus, 0x80, data);
        data.Should().Equal(0xFF, 0xFF);
        log.Write(bus, 0x80, [0x34, 0x12]);
        log.Write(bus, 0x3F8, [0x41]);

        log.UnmappedReads.Should().Be(1);
        log.UnmappedWrites.Should().Be(1);
        device.Writes.Should().ContainSingle();
        _logger.Messages.Should().Equal(
            "pio bus: unmapped read of 2 bytes at 0x80",
            "pio bus: unmapped write of 2 bytes at 0x80 (value 0x1234)");
        _logger.Levels.Should().OnlyContain(l => l == LogLevel.Warning);
    }

    [Fact]
    public void Messages_are_rate_limited_per_second_with_a_suppressed_count()
    {
        var log = new UnmappedAccessLog(BusKind.Mmio, "mmio", _logger, maxMessagesPerSecond: 3, _time);
        byte[] data = new byte[4];
        for (int i = 0; i < 10; i++)
            log.OnUnmappedRead(0xD000_0000 + (ulong)i, data);

        data.Should().Equal(0, 0, 0, 0);
        log.UnmappedReads.Should().Be(10);
        log.SuppressedMessages.Should().Be(7);
        _logger.Messages.Should().HaveCount(3);

        _time.Advance(TimeSpan.FromMilliseconds(999));
        log.OnUnmappedWrite(0x10, [1]);
        _logger.Messages.Should().HaveCount(3);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        log.OnUnmappedWrite(0x20, [1]);
        _logger.Messages.Skip(3).Should().Equal(
            "mmio bus: 8 unmapped-access messages suppressed in the last window (rate limit)",
            "mmio bus: unmapped write of 1 bytes at 0x20 (value 0x1)");
        log.SuppressedMessages.Should().Be(8);
        log.UnmappedWrites.Should().Be(2);
    }

    [Fact]
    public void Zero_rate_logs_nothing_but_still_counts()
    {
        var log = new UnmappedAccessLog(BusKind.Pio, "pio", _logger, maxMessagesPerSecond: 0, _time);
        for (int i = 0; i < 5; i++)
        {
            log.OnUnmappedWrite(0x80, [0]);
            _time.Advance(TimeSpan.FromSeconds(2));
        }
        _logger.Messages.Should().BeEmpty();
        log.UnmappedWrites.Should().Be(5);
        log.SuppressedMessages.Should().Be(5);
    }

    [Fact]
    public void Counting_is_exact_under_concurrency()
    {
        var log = new UnmappedAccessLog(BusKind.Pio, "pio", _logger, maxMessagesPerSecond: 5);
        Parallel.For(0, 8, _ =>
        {
            byte[] data = new byte[1];
            for (int i = 0; i < 10_000; i++)
                log.OnUnmappedRead(0x80, data);
        });
        log.UnmappedReads.Should().Be(80_000);
        (log.SuppressedMessages + _logger.Count).Should().Be(80_000);
    }

    private sealed class ManualTimeProvider : TimeProvider
    {
        private long _ticks = 1_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    private sealed class ListLogger : ILogger
    {
        private readonly Lock _lock = new();
        private readonly List<(LogLevel Level, string Message)> _entries = [];

        public IReadOnlyList<string> Messages
        {
            get { lock (_lock) return _entries.Select(e => e.Message).ToList(); }
        }

        public IReadOnlyList<LogLevel> Levels
        {
            get { lock (_lock) return _entries.Select(e => e.Level).ToList(); }
        }

        public int Count
        {
            get { lock (_lock) return _entries.Count; }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter)
        {
            lock (_lock)
                _entries.Add((logLevel, formatter(state, exception)));
        }
    }
}
