using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// Puts a terminal's input in raw mode (no line buffering, no local echo, no signal keys: Ctrl-C reaches the guest),
/// as QEMU's -nographic does, and restores the saved settings on Dispose. Output processing (\n → \r\n) is kept, so
/// log lines and guest output still start at the left margin.
/// </summary>
public sealed unsafe class TerminalRawInput : IDisposable
{
    private const int TCSANOW = 0, VTIME = 5, VMIN = 6;
    private readonly int _fd;
    private readonly termios_t _saved;
    private int _restored;

    private TerminalRawInput(int fd, termios_t saved)
    {
        _fd = fd;
        _saved = saved;
    }

    /// <summary>Raw mode on <paramref name="fd"/> when it is a terminal; null (nothing changed) otherwise.</summary>
    public static TerminalRawInput? TryEnter(int fd)
    {
        if (Libc.isatty(fd) != 1) return null;
        termios_t saved;
        if (Libc.tcgetattr(fd, &saved) != 0) return null;
        termios_t raw = saved;
        Libc.cfmakeraw(&raw);
        raw.c_oflag = saved.c_oflag;
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        return Libc.tcsetattr(fd, TCSANOW, &raw) == 0 ? new TerminalRawInput(fd, saved) : null;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _restored, 1) != 0) return;
        termios_t saved = _saved;
        Libc.tcsetattr(_fd, TCSANOW, &saved);
    }
}
