using MiniVmm.Firmware.Guests;
using MiniVmm.Firmware.Guests.Writer;

namespace MiniVmm.Firmware;

/// <summary>The test guests as PVH ELF images (deterministic bytes: same code, same file).</summary>
public static class GuestImages
{
    public const string HelloFileName = "hello.elf";
    public const string WriterFileName = "writer.elf";
    public const string VirtioFileName = "vblk.elf";
    public const string NetFileName = "vnet.elf";

    /// <summary>Prints <see cref="GuestAbi.HelloLine"/> and exits with status 0.</summary>
    public static byte[] Hello() => HelloGuest.Build();

    /// <summary>The self-checking memory writer (parameters on the boot command line; see firmware/README.md).</summary>
    public static byte[] Writer() => WriterGuest.Build();

    /// <summary>The virtio-blk / virtio-rng checker (firmware/README.md, "vblk").</summary>
    public static byte[] Virtio() => Guests.Virtio.VirtioGuest.Build();

    /// <summary>The virtio-net echo guest (firmware/README.md, "vnet").</summary>
    public static byte[] Net() => Guests.Net.NetGuest.Build();

    /// <summary>Writes hello.elf, writer.elf, vblk.elf and vnet.elf into <paramref name="dir"/> (created if missing); returns their paths.</summary>
    public static IReadOnlyList<string> WriteAll(string dir)
    {
        Directory.CreateDirectory(dir);
        var hello = Path.Combine(dir, HelloFileName);
        var writer = Path.Combine(dir, WriterFileName);
        File.WriteAllBytes(hello, Hello());
        File.WriteAllBytes(writer, Writer());
        var vblk = Path.Combine(dir, VirtioFileName);
        File.WriteAllBytes(vblk, Virtio());
        var vnet = Path.Combine(dir, NetFileName);
        File.WriteAllBytes(vnet, Net());
        return [hello, writer, vblk, vnet];
    }
}
