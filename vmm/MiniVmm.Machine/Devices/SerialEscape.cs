namespace MiniVmm.Machine.Devices;

/// <summary>
/// QEMU's -nographic escape key on a raw terminal: Ctrl-A x stops the VM, Ctrl-A h lists the keys, Ctrl-A Ctrl-A sends
/// one Ctrl-A to the guest; Ctrl-A followed by anything else reaches the guest as typed. Every other byte (Ctrl-C
/// included) goes to the guest. The state survives between reads, so an escape split over two reads still works.
/// </summary>
public sealed class SerialEscape(Action quit, Action<string> tell)
{
    public const byte CtrlA = 0x01;
    public const string Help = "\nC-a h    print this help\nC-a x    exit MiniVmm\nC-a C-a  send C-a\n"; // the terminal adds the \r
    private bool _pending;

    /// <summary>Copies what the guest gets from <paramref name="input"/> into <paramref name="output"/> (at least one byte longer); returns its length.</summary>
    public int Filter(ReadOnlySpan<byte> input, Span<byte> output)
    {
        if (output.Length < input.Length + 1) throw new ArgumentException("output must be one byte longer than input", nameof(output));
        int w = 0;
        foreach (byte b in input)
        {
            if (_pending)
            {
                _pending = false;
                switch (b)
                {
                    case (byte)'x' or (byte)'X': quit(); return w;
                    case (byte)'h' or (byte)'H' or (byte)'?': tell(Help); break;
                    case CtrlA: output[w++] = CtrlA; break;
                    default: output[w++] = CtrlA; output[w++] = b; break;
                }
                continue;
            }
            if (b == CtrlA) _pending = true;
            else output[w++] = b;
        }
        return w;
    }
}
