using System.Text;
using MiniVmm.Devices;

namespace MiniVmm.Machine.Diagnostics;

/// <summary>
/// Passes the serial console's bytes on to the real sink and keeps the last <see cref="Capacity"/> of them, so a VM that
/// stops on a triple fault or an emulation failure can report what the guest printed last (a kernel's last words are
/// usually the reason). Written from vCPU threads, read once at the stop.
/// </summary>
public sealed class ConsoleTail(IByteSink inner) : IByteSink
{
    public const int Capacity = 4096;

    private readonly byte[] _ring = new byte[Capacity];
    private readonly Lock _lock = new();
    private long _written;

    public void Write(ReadOnlySpan<byte> data)
    {
        inner.Write(data);
        lock (_lock)
        {
            ReadOnlySpan<byte> keep = data.Length > Capacity ? data[^Capacity..] : data;
            foreach (byte b in keep)
                _ring[_written++ % Capacity] = b;
            _written += data.Length - keep.Length;
        }
    }

    /// <summary>Up to <paramref name="count"/> last lines (control characters other than newline shown as '.'), oldest
    /// first; empty when the guest printed nothing.</summary>
    public IReadOnlyList<string> LastLines(int count)
    {
        byte[] bytes;
        lock (_lock)
        {
            int n = (int)Math.Min(_written, Capacity);
            bytes = new byte[n];
            for (int i = 0; i < n; i++)
                bytes[i] = _ring[(_written - n + i) % Capacity];
        }
        var text = new StringBuilder(Encoding.UTF8.GetString(bytes).Replace("\r", ""));
        for (int i = 0; i < text.Length; i++)
            if (char.IsControl(text[i]) && text[i] != '\n') text[i] = '.';
        var lines = text.ToString().Split('\n').ToList();
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines.Count > count ? lines[^count..] : lines;
    }
}
