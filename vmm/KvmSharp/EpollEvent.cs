using System.Runtime.InteropServices;

namespace KvmSharp;

/// <summary>What an epoll registration waits for, and what an event reports (EPOLLIN, EPOLLOUT, ...).</summary>
[Flags]
public enum EpollEvents : uint
{
    None = 0,
    Readable = 0x1,
    Writable = 0x4,
    Error = 0x8,
    HangUp = 0x10,
    /// <summary>EPOLLET: report a change of readiness once, not for as long as it lasts.</summary>
    EdgeTriggered = 1u << 31,
}

/// <summary>
/// One event returned by <see cref="Epoll.Wait"/>: the registration's token and what happened. It has the kernel's
/// layout (struct epoll_event is packed on x86-64: 4-byte events, then 8-byte data), so a span of them is handed to
/// epoll_wait as it is.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
public readonly struct EpollEvent
{
    private readonly uint _events;
    private readonly ulong _token;

    internal EpollEvent(EpollEvents events, ulong token)
    {
        _events = (uint)events;
        _token = token;
    }

    public EpollEvents Events => (EpollEvents)_events;
    public ulong Token => _token;
}
