using Microsoft.Extensions.Logging;

namespace MiniVmm.Cli.Tests;

/// <summary>Shell completion offers exactly the words the option parsers accept, aliases included.</summary>
public sealed class OptionChoicesTests
{
    [Theory]
    [InlineData("--snapshot-mode")]
    [InlineData("--mode")]
    public void Every_snapshot_mode_word_the_parser_accepts_is_offered_and_every_offered_word_parses(string option)
    {
        OptionChoices.For(option).Should().BeEquivalentTo(SnapshotCliOptions.ModeWords.Keys)
            .And.Contain(["wt", "stop-and-copy", "precopy"]);
        foreach (string word in OptionChoices.For(option))
            SnapshotCliOptions.TryParseMode(word, out _).Should().BeTrue(word);
    }

    [Fact]
    public void Memory_words_offered_are_the_restore_parsers()
    {
        OptionChoices.For("--memory").Should().BeEquivalentTo(["lazy", "mmap", "eager"]);
        OptionChoices.For("--memory").Should().BeEquivalentTo(RestoreCommand.MemoryWords.Keys);
    }

    [Fact]
    public void Every_offered_log_level_parses()
    {
        OptionChoices.For("--log-level").Should().Contain(["trace", "debug", "information", "warning", "none"]);
        foreach (string word in OptionChoices.For("--log-level"))
            Logging.TryParseLevel(word, out LogLevel _).Should().BeTrue(word);
    }

    [Fact]
    public void An_option_without_fixed_words_offers_none() => OptionChoices.For("--kernel").Should().BeEmpty();
}
