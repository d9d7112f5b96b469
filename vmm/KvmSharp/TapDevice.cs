using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// Owns one file descriptor attached to an existing tap interface (<c>/dev/net/tun</c>, TUNSETIFF with
/// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR): every frame read or written is preceded by a virtio_net_hdr of
/// <see cref="VnetHeaderSize"/> bytes. Reads and writes never block. Readiness: add the device to an
/// <see cref="Epoll"/>.
/// </summary>
/// <remarks>
/// MiniVmm attaches only to a tap that exists: with CAP_NET_ADMIN, TUNSETIFF on an unknown name would create a
/// throw-away interface nobody configured, which hides a typo in the name.
/// </remarks>
public sealed unsafe class TapDevice : IPollable, IDisposable
{
    public const int MaxNameBytes = Tun.IFNAMSIZ - 1;

    private TapDevice(FileDescriptor fd, string name, int vnetHeaderSize, bool offloads)
    {
        Handle = fd;
        Name = name;
        VnetHeaderSize = vnetHeaderSize;
        SupportsGuestOffloads = offloads;
    }

    internal FileDescriptor Handle { get; }

    SafeHandle IPollable.PollHandle => Handle;
    public string Name { get; }
    public int VnetHeaderSize { get; }
    /// <summary>The tap accepted TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, so it may hand us partially checksummed and
    /// segmentation-offload frames once <see cref="SetOffload"/> enables them.</summary>
    public bool SupportsGuestOffloads { get; }

    /// <summary>A name the kernel would take for an interface, or the reason it would not (null when valid).</summary>
    public static string? NameProblem(string name)
    {
        if (string.IsNullOrEmpty(name)) return "the tap name is empty";
        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes) return $"tap name '{name}' is longer than {MaxNameBytes} bytes (IFNAMSIZ)";
        if (name is "." or ".." || name.Any(c => c == '/' || c == ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
            return $"tap name '{name}' is not a valid interface name";
        return null;
    }

    /// <summary>Attaches to tap <paramref name="name"/> with a <paramref name="vnetHeaderSize"/>-byte vnet header.</summary>
    /// <exception cref="TapException">No TUN/TAP support, no such tap, not a tap, in use, or not permitted.</exception>
    public static TapDevice Open(string name, int vnetHeaderSize = 12)
    {
        if (NameProblem(name) is { } problem) throw new TapException(problem);
        string sys = Path.Combine("/sys/class/net", name);
        if (!Directory.Exists(sys))
            throw new TapException($"tap '{name}' does not exist (create it first: ip tuntap add dev {name} mode tap; ip link set {name} up)", Errno.ENOENT);
        if (!File.Exists(Path.Combine(sys, "tun_flags")))
            throw new TapException($"network interface '{name}' is not a tap device");

        int raw = Libc.open(Tun.CloneDevice, Libc.O_RDWR | Libc.O_CLOEXEC | Libc.O_NONBLOCK);
        if (raw < 0)
        {
            Errno errno = LastErrno.Get();
            throw new TapException(errno switch
            {
                Errno.ENOENT or Errno.ENXIO or Errno.ENODEV => $"cannot open {Tun.CloneDevice}: the host has no TUN/TAP support (modprobe tun)",
                Errno.EACCES or Errno.EPERM => $"cannot open {Tun.CloneDevice}: permission denied",
                _ => $"cannot open {Tun.CloneDevice}: {Marshal.GetPInvokeErrorMessage((int)errno)} (errno {(int)errno})",
            }, errno);
        }
        var fd = new FileDescriptor(raw);
        try
        {
            var req = new ifreq_t { ifr_flags = Tun.IFF_TAP | Tun.IFF_NO_PI | Tun.IFF_VNET_HDR };
            var bytes = Encoding.UTF8.GetBytes(name);
            for (int i = 0; i < bytes.Length; i++) req.ifr_name[i] = bytes[i];
            if (Libc.ioctl(fd, Tun.TUNSETIFF, &req) < 0)
            {
                Errno errno = LastErrno.Get();
                throw new TapException(errno switch
                {
                    Errno.EPERM or Errno.EACCES => $"not permitted to attach to tap '{name}' (it belongs to another user or group; create it with `ip tuntap add dev {name} mode tap user $USER`, or run with CAP_NET_ADMIN)",
                    Errno.EBUSY => $"tap '{name}' is already in use by another process",
                    Errno.EINVAL => $"'{name}' is not a tap device (a tun device, or one that refuses IFF_VNET_HDR)",
                    _ => $"cannot attach to tap '{name}': {Marshal.GetPInvokeErrorMessage((int)errno)} (errno {(int)errno})",
                }, errno);
            }
            int size = vnetHeaderSize;
            if (Libc.ioctl(fd, Tun.TUNSETVNETHDRSZ, &size) < 0)
            {
                Errno errno = LastErrno.Get();
                throw new TapException($"tap '{name}' refuses a {vnetHeaderSize}-byte vnet header: {Marshal.GetPInvokeErrorMessage((int)errno)} (errno {(int)errno})", errno);
            }
            // Probe the receive offloads, then start with none: the guest's driver decides which it takes.
            bool offloads = Libc.ioctl_int(fd, Tun.TUNSETOFFLOAD, (nint)(Tun.TUN_F_CSUM | Tun.TUN_F_TSO4 | Tun.TUN_F_TSO6)) == 0;
            var tap = new TapDevice(fd, name, vnetHeaderSize, offloads);
            tap.SetOffload(TapOffloads.None);
            return tap;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>TUNSETOFFLOAD: which offloaded frames the tap may hand to the reader.</summary>
    public void SetOffload(TapOffloads flags)
    {
        if (Libc.ioctl_int(Handle, Tun.TUNSETOFFLOAD, (nint)(uint)flags) < 0)
        {
            Errno errno = LastErrno.Get();
            throw new TapException($"tap '{Name}': TUNSETOFFLOAD {flags} failed: {Marshal.GetPInvokeErrorMessage((int)errno)} (errno {(int)errno})", errno);
        }
    }

    /// <summary>Reads one frame (vnet header first) into <paramref name="buffer"/>; -1 when none is waiting. A frame
    /// longer than the buffer is truncated by the kernel (the buffer should hold the largest frame).</summary>
    public int Read(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            nint n = Libc.read(Handle, p, (nuint)buffer.Length);
            if (n >= 0) return (int)n;
            Errno errno = LastErrno.Get();
            if (errno is Errno.EAGAIN or Errno.EINTR) return -1;
            throw new LinuxException($"read(tap {Name})", errno);
        }
    }

    /// <summary>Writes one frame (vnet header first). False when the tap would block or the interface is down
    /// (EAGAIN, EIO): the frame is dropped, as a NIC drops when its link has no room.</summary>
    /// <exception cref="LinuxException">The kernel refused the frame for another reason (EINVAL: a malformed header).</exception>
    public bool Write(ReadOnlySpan<byte> frame)
    {
        fixed (byte* p = frame)
        {
            nint n = Libc.write(Handle, p, (nuint)frame.Length);
            if (n >= 0) return true;
            Errno errno = LastErrno.Get();
            if (errno is Errno.EAGAIN or Errno.EINTR or Errno.EIO /* interface down */) return false;
            throw new LinuxException($"write(tap {Name})", errno);
        }
    }

    public void Dispose() => Handle.Dispose();
}
