using KvmSharp;
using KvmSharp.Interop;

namespace MiniVmm.Machine;

/// <summary>Serial input from the VMM's stdin, when the serial console is stdio and stdin is a terminal or a pipe.</summary>
public sealed partial class Vm
{
    private FileDescriptor? _stdin;
    private Stream? _stdinStream;
    private ulong _stdinToken;
    private bool _stdinWatched;
    private readonly byte[] _stdinBuffer = new byte[64];

    private void StartStdinInput()
    {
        // Regular files and /dev/null cannot be polled (epoll_ctl fails), so only terminals and pipes feed input.
        if (Config.Serial is not SerialTarget.Stdio) return;
        _stdin = new FileDescriptor(0, ownsHandle: false);
        _stdinStream = Console.OpenStandardInput(1);
        WatchStdin();
    }

    private void WatchStdin()
    {
        if (_stdin is null || _stdinWatched) return;
        try
        {
            _stdinToken = Loop.AddFd(_stdin, Libc.EPOLLIN, _ => OnStdinReadable());
            _stdinWatched = true;
        }
        catch (KvmException)
        {
            // Regular files and /dev/null cannot be polled: no serial input then.
            _stdin = null;
        }
    }

    private void OnStdinReadable()
    {
        int free;
        lock (Devices.GateOf(Serial)) free = Serial.RxFreeSpace;
        if (free == 0)
        {
            // FIFO full: stop polling (level-triggered epoll would spin) until the guest drains it.
            Loop.RemoveFd(_stdin!, _stdinToken);
            _stdinWatched = false;
            return;
        }
        int n = _stdinStream!.Read(_stdinBuffer, 0, Math.Min(free, _stdinBuffer.Length));
        if (n <= 0)
        {
            Loop.RemoveFd(_stdin!, _stdinToken); // EOF
            _stdinWatched = false;
            _stdin = null;
            return;
        }
        lock (Devices.GateOf(Serial)) Serial.EnqueueInput(_stdinBuffer.AsSpan(0, n));
    }

    private void StopStdinInput() => _stdinStream?.Dispose();
}
