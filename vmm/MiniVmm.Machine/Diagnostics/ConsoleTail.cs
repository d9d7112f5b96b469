using System.Text;

namespace MiniVmm.Machine.Diagnostics;

/// <summary>
/// The last <see cref="Capacity"/> bytes of the serial console, so a VM that stops on a triple fault or an emulation
/// failure can report what the guest printed last (a kernel's last words are usually the reason). Appended from vCPU
/// threads, read once at the stop.
/// </summary>
public sealed class ConsoleTail
{
    public const int Capacity = 4096;

    private readonly byte[] _ring = new byte[Capacity];
    private readonly Lock _lock = new();
    private long _written;

    public void Append(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            ReadOnlySpan<byte> keep = data.Length > Capacity ? data[^Capacity..] : data;
            _written += data.Length - keep.Length; // the bytes dropped come first
            foreach (byte b in keep)
                _ring[_written++ % Capacity] = b;
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
