using System.CommandLine;

namespace MiniVmm.Cli;

/// <summary>
/// The fixed values of options that take a word (`--memory lazy`), offered to shell completion. The options stay
/// strings, so a wrong word still gets the option's own error message naming what is allowed.
/// </summary>
internal static class OptionChoices
{
    private static readonly Dictionary<string, string[]> Choices = new(StringComparer.Ordinal)
    {
        ["--memory"] = ["lazy", "mmap", "eager"],
        ["--snapshot-mode"] = ["write-tracking", "stop-copy", "dirty-log"],
        ["--mode"] = ["write-tracking", "stop-copy", "dirty-log"],
        ["--serial"] = ["stdio", "none", "file:"],
        ["--log-level"] = ["trace", "debug", "information", "warning", "error", "critical", "none"],
    };

    /// <summary>Adds the choices to every option of that name anywhere under <paramref name="command"/>.</summary>
    public static void AddTo(Command command)
    {
        foreach (var option in command.Options)
            if (Choices.TryGetValue(option.Name, out var words)) option.CompletionSources.Add(words);
        foreach (var sub in command.Subcommands) AddTo(sub);
    }
}
