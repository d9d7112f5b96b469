using System.Runtime.CompilerServices;

namespace MiniVmm.Core.Bus;

/// <summary>Which address space a <see cref="Bus"/> decodes. It decides what an unmapped read returns.</summary>
public enum BusKind
{
    /// <summary>x86 port I/O (16-bit port numbers). Unmapped reads return all ones, like a floating ISA bus.</summary>
    Pio,

    /// <summary>Memory-mapped I/O. Unmapped reads return zeros.</summary>
    Mmio,
}

/// <summary>One device's window on a <see cref="Bus"/>: <c>[Base, Base + Length)</c>.</summary>
public readonly record struct BusRange(ulong Base, ulong Length, IBusDevice Device, string Name)
{
    /// <summary>The last address inside the range (inclusive).</summary>
    public ulong Last => Base + Length - 1;

    public override string ToString() => $"'{Name}' at 0x{Base:x}-0x{Last:x}";
}

/// <summary>
/// An address decoder for PIO or MMIO: maps non-overlapping ranges to <see cref="IBusDevice"/>s and dispatches guest
/// accesses with the offset inside the device's range.
/// </summary>
/// <remarks>
/// <para>Lifecycle: all devices are registered while the VM is built, then <see cref="Freeze"/> is called before the
/// vCPUs start; registering afterwards throws. Lookups never take a lock and never allocate: they binary-search an
/// immutable sorted array published with a release write, so any number of vCPU threads may dispatch concurrently
/// (even with a registration racing them, a lookup sees either the old or the new array, both consistent).</para>
/// <para>An access is mapped only if it lies entirely inside one device's range; an access that straddles the end of
/// a range (or spans two devices) is unmapped. Dispatch does not serialize calls into a device: a device reachable from
/// several vCPUs does its own locking.</para>
/// </remarks>
public sealed class Bus
{
    private readonly Lock _registrationLock = new();
    private BusRange[] _ranges = [];
    private volatile bool _frozen;

    public Bus(BusKind kind, string name = "")
    {
        if (!Enum.IsDefined(kind))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown bus kind");
        Kind = kind;
        Name = string.IsNullOrEmpty(name) ? (kind == BusKind.Pio ? "pio" : "mmio") : name;
    }

    public BusKind Kind { get; }

    /// <summary>A name for log messages ("pio", "mmio").</summary>
    public string Name { get; }

    /// <summary>True once <see cref="Freeze"/> has been called.</summary>
    public bool IsFrozen => _frozen;

    /// <summary>The registered ranges in ascending address order (a snapshot; never changes afterwards).</summary>
    public IReadOnlyList<BusRange> Ranges => Volatile.Read(ref _ranges);

    /// <summary>
    /// Maps <paramref name="device"/> at <c>[baseAddress, baseAddress + length)</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Zero length, a range whose end wraps past 2^64, or an overlap with a
    /// registered range.</exception>
    /// <exception cref="InvalidOperationException">The bus is frozen.</exception>
    public void Register(ulong baseAddress, ulong length, IBusDevice device, string name)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (length == 0)
            throw new ArgumentException($"{Name} bus: cannot register '{name}' at 0x{baseAddress:x} with zero length",
                nameof(length));
        if (baseAddress > ulong.MaxValue - length)
            throw new ArgumentException(
                $"{Name} bus: cannot register '{name}' at 0x{baseAddress:x} with length 0x{length:x}: " +
                "the range wraps past the end of the address space", nameof(length));

        var added = new BusRange(baseAddress, length, device, name);
        lock (_registrationLock)
        {
            if (_frozen)
                throw new InvalidOperationException(
                    $"{Name} bus is frozen: cannot register {added} after the vCPUs started");

            BusRange[] old = _ranges;
            int insertAt = 0;
            while (insertAt < old.Length && old[insertAt].Base < baseAddress)
                insertAt++;
            // Only the neighbours can overlap: the ranges in 'old' are sorted and disjoint.
            if (insertAt > 0 && Overlaps(old[insertAt - 1], added))
                throw OverlapError(added, old[insertAt - 1]);
            if (insertAt < old.Length && Overlaps(old[insertAt], added))
                throw OverlapError(added, old[insertAt]);

            var next = new BusRange[old.Length + 1];
            Array.Copy(old, 0, next, 0, insertAt);
            next[insertAt] = added;
            Array.Copy(old, insertAt, next, insertAt + 1, old.Length - insertAt);
            Volatile.Write(ref _ranges, next);
        }
    }

    /// <summary>Forbids further registration. Call before the first vCPU runs. Idempotent.</summary>
    public void Freeze()
    {
        lock (_registrationLock)
            _frozen = true;
    }

    /// <summary>Finds the range that contains the whole access <c>[address, address + size)</c>.</summary>
    public bool TryFind(ulong address, int size, out BusRange range, out ulong offset)
    {
        BusRange[] ranges = Volatile.Read(ref _ranges);
        int index = FindIndex(ranges, address, size);
        if (index < 0)
        {
            range = default;
            offset = 0;
            return false;
        }
        range = ranges[index];
        offset = address - range.Base;
        return true;
    }

    /// <summary>Dispatches a read to the device that maps it. Returns false (and leaves <paramref name="data"/>
    /// untouched) when no single device maps the whole access; see <see cref="UnmappedAccessLog"/> for the fill
    /// policy.</summary>
    public bool TryRead(ulong address, Span<byte> data)
    {
        BusRange[] ranges = Volatile.Read(ref _ranges);
        int index = FindIndex(ranges, address, data.Length);
        if (index < 0)
            return false;
        ref readonly BusRange range = ref ranges[index];
        range.Device.Read(address - range.Base, data);
        return true;
    }

    /// <summary>Dispatches a write to the device that maps it. Returns false when no single device maps the whole
    /// access.</summary>
    public bool TryWrite(ulong address, ReadOnlySpan<byte> data)
    {
        BusRange[] ranges = Volatile.Read(ref _ranges);
        int index = FindIndex(ranges, address, data.Length);
        if (index < 0)
            return false;
        ref readonly BusRange range = ref ranges[index];
        range.Device.Write(address - range.Base, data);
        return true;
    }

    /// <summary>Index of the range holding all of <c>[address, address + size)</c>, or -1. Empty accesses are
    /// unmapped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int FindIndex(BusRange[] ranges, ulong address, int size)
    {
        if (size <= 0)
            return -1;
        // Last range whose base is <= address.
        int lo = 0, hi = ranges.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = lo + ((hi - lo) >> 1);
            if (ranges[mid].Base <= address)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        if (found < 0)
            return -1;
        ulong offset = address - ranges[found].Base;
        ulong length = ranges[found].Length;
        // Overflow-safe: offset < length, and the access fits in what is left of the range.
        if (offset >= length || (ulong)size > length - offset)
            return -1;
        return found;
    }

    private static bool Overlaps(in BusRange a, in BusRange b) => a.Base <= b.Last && b.Base <= a.Last;

    private ArgumentException OverlapError(in BusRange added, in BusRange existing) =>
        new($"{Name} bus: cannot register {added}: it overlaps {existing}");
}
