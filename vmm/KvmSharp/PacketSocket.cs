using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// Owns an AF_PACKET raw socket bound to one interface: whole Ethernet frames in and out, no IP stack in between.
/// Used to talk to a guest through its tap without giving the tap an address.
/// </summary>
public sealed unsafe class PacketSocket : IDisposable
{
    private readonly FileDescriptor _fd;
    private readonly int _ifindex;

    public PacketSocket(string interfaceName)
    {
        _ifindex = (int)Tun.if_nametoindex(interfaceName);
        if (_ifindex == 0) throw new LinuxException("if_nametoindex", LastErrno.Get(), interfaceName);
        ushort protocol = (ushort)System.Net.IPAddress.HostToNetworkOrder((short)Tun.ETH_P_ALL);
        int fd = Tun.socket(Tun.AF_PACKET, Tun.SOCK_RAW | Tun.SOCK_CLOEXEC | Tun.SOCK_NONBLOCK, protocol);
        LinuxException.Check(fd, "socket(AF_PACKET)");
        _fd = new FileDescriptor(fd);
        var addr = new sockaddr_ll { sll_family = Tun.AF_PACKET, sll_protocol = protocol, sll_ifindex = _ifindex };
        if (Tun.bind(_fd, &addr, sizeof(sockaddr_ll)) < 0)
        {
            Errno errno = LastErrno.Get();
            _fd.Dispose();
            throw new LinuxException("bind(AF_PACKET)", errno, interfaceName);
        }
    }

    /// <summary>Sends one whole Ethernet frame out of the interface.</summary>
    public void Send(ReadOnlySpan<byte> frame)
    {
        fixed (byte* p = frame)
            if (Libc.write(_fd, p, (nuint)frame.Length) < 0) throw new LinuxException("send(AF_PACKET)", LastErrno.Get());
    }

    /// <summary>Receives one frame seen on the interface (in either direction), waiting at most
    /// <paramref name="timeoutMs"/>; -1 when none came.</summary>
    public int Receive(Span<byte> buffer, int timeoutMs)
    {
        var pfd = new pollfd_t { fd = _fd.DangerousGetFd(), events = Libc.POLLIN };
        if (Libc.poll(&pfd, 1, timeoutMs) <= 0) return -1;
        fixed (byte* p = buffer)
        {
            nint n = Libc.read(_fd, p, (nuint)buffer.Length);
            return n < 0 ? -1 : (int)n;
        }
    }

    public void Dispose() => _fd.Dispose();
}
