using System.Globalization;

namespace MiniVmm.Devices.Virtio.Net;

/// <summary>A unicast Ethernet address, written <c>52:54:00:12:34:56</c>.</summary>
public readonly record struct MacAddress(byte B0, byte B1, byte B2, byte B3, byte B4, byte B5)
{
    /// <summary>QEMU's default for its first NIC (a locally administered unicast address); slot i adds i to the
    /// last byte, so a VM's addresses are the same every run and on restore.</summary>
    public static MacAddress DefaultFor(int slot) => new(0x52, 0x54, 0x00, 0x12, 0x34, (byte)(0x56 + slot));

    public byte[] ToBytes() => [B0, B1, B2, B3, B4, B5];

    public override string ToString() => $"{B0:x2}:{B1:x2}:{B2:x2}:{B3:x2}:{B4:x2}:{B5:x2}";

    /// <exception cref="FormatException">Not six hex pairs separated by ':', or not a unicast address.</exception>
    public static MacAddress Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 6 || parts.Any(p => p.Length != 2))
            throw new FormatException($"mac={text} is not six hex byte pairs separated by ':' (e.g. 52:54:00:12:34:56)");
        var b = new byte[6];
        for (int i = 0; i < 6; i++)
            if (!byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out b[i]))
                throw new FormatException($"mac={text}: '{parts[i]}' is not a hex byte");
        if ((b[0] & 1) != 0) throw new FormatException($"mac={text} is a multicast address (the lowest bit of the first byte is set)");
        if (b.All(x => x == 0)) throw new FormatException($"mac={text} is the all-zero address");
        return new MacAddress(b[0], b[1], b[2], b[3], b[4], b[5]);
    }
}
