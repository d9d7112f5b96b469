using System.Text;

namespace MiniVmm.Machine.Monitor;

/// <summary>
/// Splits an HMP command line into words with shell-like quoting, so the original usage
/// `migrate exec:'cat > ./vm_state'` yields the URI `exec:cat > ./vm_state`: single quotes are literal, double quotes
/// allow \" and \\, a backslash outside quotes escapes the next character. Quotes may start mid-word.
/// </summary>
public static class HmpTokenizer
{
    public static bool TryTokenize(string line, out List<string> words, out string? error)
    {
        words = new List<string>();
        error = null;
        var word = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord) { words.Add(word.ToString()); word.Clear(); inWord = false; }
                continue;
            }
            inWord = true;
            if (c == '\'')
            {
                int end = line.IndexOf('\'', i + 1);
                if (end < 0) { error = "unterminated ' quote"; return false; }
                word.Append(line, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '"')
            {
                i++;
                while (i < line.Length && line[i] != '"')
                {
                    if (line[i] == '\\' && i + 1 < line.Length && line[i + 1] is '"' or '\\') i++;
                    word.Append(line[i++]);
                }
                if (i >= line.Length) { error = "unterminated \" quote"; return false; }
            }
            else if (c == '\\')
            {
                if (i + 1 >= line.Length) { error = "trailing backslash"; return false; }
                word.Append(line[++i]);
            }
            else word.Append(c);
        }
        if (inWord) words.Add(word.ToString());
        return true;
    }
}
