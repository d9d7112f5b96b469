using System.CommandLine;

namespace MiniVmm.Cli;

/// <summary>
/// The fixed values of options that take a word (`--memory lazy`), offered to shell completion, taken from the tables
/// the parsers use. The options stay strings, so a wrong word still gets the option's own error message naming what
/// is allowed.
/// </summary>
internal static class OptionChoices
{
    private static readonly Dictionary<string, string[]> Choices = new(StringComparer.Ordinal)
    {
        ["--memory"] = [.. RestoreCommand.MemoryWords.Keys],
        ["--snapshot-mode"] = [.. SnapshotCliOptions.ModeWords.Keys],
        ["--mode"] = [.. SnapshotCliOptions.ModeWords.Keys],
        ["--serial"] = ["stdio", "none", "file:"],
        // Lower-case names of every LogLevel (the parser takes them case-insensitively, and "warn").
        ["--log-level"] = [.. Enum.GetNames<Microsoft.Extensions.Logging.LogLevel>().Select(n => n.ToLowerInvariant())],
    };

    /// <summary>The words offered for <paramref name="optionName"/> (empty when it takes no fixed word).</summary>
    public static IReadOnlyList<string> For(string optionName) => Choices.TryGetValue(optionName, out var words) ? words : [];

    /// <summary>Adds the choices to every option of that name anywhere under <paramref name="command"/>.</summary>
    public static void AddTo(Command command)
    {
        foreach (var option in command.Options)
            if (Choices.TryGetValue(option.Name, out var words)) option.CompletionSources.Add(words);
        foreach (var sub in command.Subcommands) AddTo(sub);
    }
}
