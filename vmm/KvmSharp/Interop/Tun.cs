using System.Runtime.InteropServices;

namespace KvmSharp.Interop;

/// <summary>TUN/TAP interop as named in &lt;linux/if_tun.h&gt;, &lt;linux/if.h&gt; and &lt;linux/if_packet.h&gt;.</summary>
internal static unsafe partial class Tun
{
    public const string CloneDevice = "/dev/net/tun";
    /// <summary>IFNAMSIZ: interface names hold at most 15 bytes plus the NUL.</summary>
    public const int IFNAMSIZ = 16;

    public const short IFF_TUN = 0x0001, IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;

    public const uint TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04, TUN_F_TSO_ECN = 0x08, TUN_F_UFO = 0x10;

    // ioctl request numbers ('T' = 0x54), derived from _IOW/_IOR with the argument sizes the header gives.
    public static readonly uint TUNSETIFF = Ioc.IOW('T', 202, sizeof(int));
    public static readonly uint TUNGETFEATURES = Ioc.IOR('T', 207, sizeof(uint));
    public static readonly uint TUNSETOFFLOAD = Ioc.IOW('T', 208, sizeof(uint));
    public static readonly uint TUNGETIFF = Ioc.IOR('T', 210, sizeof(uint));
    public static readonly uint TUNGETVNETHDRSZ = Ioc.IOR('T', 215, sizeof(int));
    public static readonly uint TUNSETVNETHDRSZ = Ioc.IOW('T', 216, sizeof(int));

    // AF_PACKET (for raw frames on an interface; the tests use it to talk to a guest through its tap).
    public const int AF_PACKET = 17, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000, SOCK_NONBLOCK = 0x800;
    public const ushort ETH_P_ALL = 0x0003;
    public const int MSG_DONTWAIT = 0x40;

    private const string Lib = "libc.so.6";

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int bind(SafeHandle fd, sockaddr_ll* addr, int length);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint if_nametoindex(string name);
}

/// <summary>struct ifreq (40 bytes on x86-64): the name, then a 24-byte union of which TUNSETIFF uses ifr_flags.</summary>
[StructLayout(LayoutKind.Sequential, Size = 40)]
internal unsafe struct ifreq_t
{
    public fixed byte ifr_name[Tun.IFNAMSIZ];
    public short ifr_flags;
}

/// <summary>struct sockaddr_ll (20 bytes): a link-level address for AF_PACKET.</summary>
[StructLayout(LayoutKind.Sequential, Size = 20)]
internal unsafe struct sockaddr_ll
{
    public ushort sll_family;
    /// <summary>Network byte order.</summary>
    public ushort sll_protocol;
    public int sll_ifindex;
    public ushort sll_hatype;
    public byte sll_pkttype;
    public byte sll_halen;
    public fixed byte sll_addr[8];
}
