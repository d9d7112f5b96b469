using KvmSharp;
using KvmSharp.Abi;

namespace MiniVmm.Machine;

/// <summary>Serial input from the VMM's stdin, when the serial console is stdio and stdin is a terminal or a pipe.</summary>
public sealed partial class Vm
{
    private FileDescriptor? _stdin;
    private Stream? _stdinStream;
    private ulong _stdinToken;
    private bool _stdinWatched;
    private const int StdinChunk = 64;
    private readonly byte[] _stdinBuffer = new byte[StdinChunk];
    private readonly byte[] _stdinFiltered = new byte[StdinChunk + 1]; // the escape filter may add one byte (C-a + key)
    private TerminalRawInput? _rawTerminal;
    private MiniVmm.Machine.Devices.SerialEscape? _escape;

    private void StartStdinInput()
    {
        // Regular files and /dev/null cannot be polled (epoll_ctl fails), so only terminals and pipes feed input.
        if (Config.Serial is not SerialTarget.Stdio) return;
        _life.OnRelease(VmLevel.ConsoleInput, "terminal input", StopStdinInput);
        _stdin = FileDescriptor.BorrowStandardInput();
        // A terminal goes raw as under QEMU -nographic: keys reach the guest as typed (Ctrl-C too); Ctrl-A x quits.
        _rawTerminal = TerminalRawInput.TryEnter(0);
        // On a terminal, .NET's console stream edits and echoes input itself; plain read(2) passes the bytes as typed.
        _stdinStream = _rawTerminal is not null
            ? new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, bufferSize: 0)
            : Console.OpenStandardInput(1);
        if (_rawTerminal is not null)
            _escape = new MiniVmm.Machine.Devices.SerialEscape(
                () => RequestStop(new VmExitStatus(VmStopReason.ConsoleQuit)), text => Console.Error.Write(text));
        WatchStdin();
    }

    private void WatchStdin()
    {
        if (_stdin is null || _stdinWatched) return;
        try
        {
            _stdinToken = Loop.AddFd(_stdin, EpollEvents.Readable, _ => OnStdinReadable());
            _stdinWatched = true;
        }
        catch (LinuxException)
        {
            // Regular files and /dev/null cannot be polled: no serial input then.
            _stdin = null;
        }
    }

    private void OnStdinReadable()
    {
        int free;
        lock (Devices.GateOf(Serial)) free = Serial.RxFreeSpace;
        // With the escape filter on, a held C-a can come out as two bytes: keep one slot spare so nothing is dropped.
        int reserve = _escape is null ? 0 : 1;
        if (free <= reserve)
        {
            // FIFO full: stop polling (level-triggered epoll would spin) until the guest drains it.
            Loop.RemoveFd(_stdin!, _stdinToken);
            _stdinWatched = false;
            return;
        }
        int n = _stdinStream!.Read(_stdinBuffer, 0, Math.Min(free - reserve, _stdinBuffer.Length));
        if (n <= 0)
        {
            Loop.RemoveFd(_stdin!, _stdinToken); // EOF
            _stdinWatched = false;
            _stdin = null;
            return;
        }
        if (_escape is not null)
        {
            int m = _escape.Filter(_stdinBuffer.AsSpan(0, n), _stdinFiltered);
            lock (Devices.GateOf(Serial)) Serial.EnqueueInput(_stdinFiltered.AsSpan(0, m));
        }
        else lock (Devices.GateOf(Serial)) Serial.EnqueueInput(_stdinBuffer.AsSpan(0, n));
    }

    private void StopStdinInput()
    {
        _rawTerminal?.Dispose();
        _stdinStream?.Dispose();
    }
}
