using System.Globalization;

namespace MiniVmm.Core.Memory;

/// <summary>
/// A guest physical address. A number the guest controls (a descriptor field, a register) becomes one explicitly, at
/// the line that decides to treat it as an address; only <see cref="GuestMemory"/> turns one into host memory, after
/// checking the range against guest RAM. Arithmetic wraps like <see cref="ulong"/>: the range checks are what keep an
/// access inside RAM, and they are overflow-safe.
/// </summary>
public readonly record struct GuestAddress(ulong Value) : IComparable<GuestAddress>, IFormattable
{
    public static GuestAddress operator +(GuestAddress address, ulong bytes) => new(unchecked(address.Value + bytes));
    public static GuestAddress operator -(GuestAddress address, ulong bytes) => new(unchecked(address.Value - bytes));
    /// <summary>The distance in bytes from <paramref name="start"/> up to <paramref name="end"/>.</summary>
    public static ulong operator -(GuestAddress end, GuestAddress start) => unchecked(end.Value - start.Value);
    public static bool operator <(GuestAddress a, GuestAddress b) => a.Value < b.Value;
    public static bool operator >(GuestAddress a, GuestAddress b) => a.Value > b.Value;
    public static bool operator <=(GuestAddress a, GuestAddress b) => a.Value <= b.Value;
    public static bool operator >=(GuestAddress a, GuestAddress b) => a.Value >= b.Value;

    public int CompareTo(GuestAddress other) => Value.CompareTo(other.Value);

    /// <summary>True when the address is a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public bool IsAligned(ulong alignment) => (Value & (alignment - 1)) == 0;

    /// <summary>The guest page (4 KiB frame) number that holds this address.</summary>
    public ulong PageNumber => Value / GuestMemory.PageSize;

    /// <summary>The start of the guest page that holds this address.</summary>
    public GuestAddress PageStart => new(Value & ~(GuestMemory.PageSize - 1));

    /// <summary>The address of guest page <paramref name="pageNumber"/>.</summary>
    public static GuestAddress OfPage(ulong pageNumber) => new(pageNumber * GuestMemory.PageSize);

    /// <summary>0x and lower-case hex.</summary>
    public override string ToString() => "0x" + Value.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>A format applies to the number (<c>0x{address:x}</c> as for a <see cref="ulong"/>); none gives <see cref="ToString()"/>.</summary>
    public string ToString(string? format, IFormatProvider? formatProvider) =>
        string.IsNullOrEmpty(format) ? ToString() : Value.ToString(format, formatProvider ?? CultureInfo.InvariantCulture);
}
