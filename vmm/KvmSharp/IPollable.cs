using System.Runtime.InteropServices;

namespace KvmSharp;

/// <summary>
/// A kernel object an <see cref="Epoll"/> can wait on (an eventfd, a userfaultfd, a tap device, a file descriptor).
/// The handle stays with its owner: the epoll borrows it for the registration call only.
/// </summary>
public interface IPollable
{
    internal SafeHandle PollHandle { get; }
}
