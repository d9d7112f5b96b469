using System.Text;

namespace MiniVmm.Qmp;

/// <summary>
/// Splits the bytes a QMP client sends into JSON texts. QMP is a stream of JSON values, not of lines: QEMU's own
/// Python library sends objects with no newline after them, while socat users send one per line. So the framer tracks
/// nesting (outside of strings) and yields a message each time a top-level object or array closes. Anything else at
/// the top level (a bare word, a stray '}') is yielded as a malformed message at the next delimiter so the client gets
/// a parse error instead of silence. A message longer than <see cref="MaxMessageBytes"/> is dropped and the rest of
/// its line discarded, bounding memory per client.
/// </summary>
public sealed class QmpFramer
{
    public const int MaxMessageBytes = 64 * 1024;

    private readonly List<byte> _current = new();
    private int _depth;
    private bool _inString, _escape, _bareToken, _discarding;

    /// <summary>A complete message (Text) or a framing error (Error) in arrival order.</summary>
    public readonly record struct Frame(string? Text, string? Error);

    public IEnumerable<Frame> Feed(ReadOnlySpan<byte> data)
    {
        var frames = new List<Frame>();
        foreach (byte b in data) Push(b, frames);
        return frames;
    }

    private void Push(byte b, List<Frame> frames)
    {
        if (_discarding)
        {
            if (b == (byte)'\n') _discarding = false;
            return;
        }
        if (_depth == 0 && !_bareToken)
        {
            if (b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') return;
            _current.Clear();
            _current.Add(b);
            if (b is (byte)'{' or (byte)'[') _depth = 1;
            else if (b is (byte)'}' or (byte)']') Emit(frames, "JSON parse error, unexpected '" + (char)b + "'");
            else _bareToken = true;
            return;
        }
        if (_bareToken)
        {
            // A top-level scalar or garbage: QMP input must be an object, so report it once it ends.
            if (b is (byte)'\n' or (byte)'{' or (byte)'[')
            {
                string text = Encoding.UTF8.GetString(_current.ToArray()).Trim();
                _bareToken = false;
                frames.Add(new Frame(text, null));
                _current.Clear();
                if (b != (byte)'\n') Push(b, frames);
                return;
            }
            Append(b, frames);
            return;
        }
        Append(b, frames);
        if (_discarding || _depth == 0) return;
        if (_inString)
        {
            if (_escape) _escape = false;
            else if (b == (byte)'\\') _escape = true;
            else if (b == (byte)'"') _inString = false;
            return;
        }
        switch (b)
        {
            case (byte)'"': _inString = true; break;
            case (byte)'{' or (byte)'[': _depth++; break;
            case (byte)'}' or (byte)']':
                if (--_depth == 0) frames.Add(new Frame(Encoding.UTF8.GetString(_current.ToArray()), null));
                break;
        }
    }

    private void Append(byte b, List<Frame> frames)
    {
        if (_current.Count >= MaxMessageBytes)
        {
            frames.Add(new Frame(null, $"JSON message exceeds {MaxMessageBytes} bytes; discarded up to the next newline"));
            Reset();
            _discarding = b != (byte)'\n';
            return;
        }
        _current.Add(b);
    }

    private void Emit(List<Frame> frames, string error)
    {
        frames.Add(new Frame(null, error));
        Reset();
    }

    private void Reset()
    {
        _current.Clear();
        _depth = 0;
        _inString = _escape = _bareToken = false;
    }
}
