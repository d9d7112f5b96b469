using MiniVmm.Machine.Monitor;

namespace MiniVmm.Machine.Tests.Monitor;

public sealed class HmpTokenizerTests
{
    private static List<string> Words(string line)
    {
        HmpTokenizer.TryTokenize(line, out var words, out string? error).Should().BeTrue(error);
        error.Should().BeNull();
        return words;
    }

    [Fact]
    public void The_original_usage_yields_the_exec_uri_with_its_spaces() =>
        Words("migrate exec:'cat > ./vm_state'").Should().Equal("migrate", "exec:cat > ./vm_state");

    [Fact]
    public void Whitespace_of_any_kind_and_amount_separates_words() =>
        Words("  info \t status  \n").Should().Equal("info", "status");

    [Fact]
    public void An_empty_line_has_no_words() => Words("   ").Should().BeEmpty();

    [Fact]
    public void Single_quotes_are_literal() => Words("echo 'a \\\" b\\\\'").Should().Equal("echo", "a \\\" b\\\\");

    [Fact]
    public void Double_quotes_allow_escaped_quote_and_backslash_only() =>
        Words("echo \"a \\\"b\\\" \\\\ \\n\"").Should().Equal("echo", "a \"b\" \\ \\n");

    [Fact]
    public void A_backslash_outside_quotes_escapes_the_next_character() =>
        Words("a\\ b c\\'d").Should().Equal("a b", "c'd");

    [Fact]
    public void Quotes_may_start_and_end_mid_word() =>
        Words("exec:\"cat x\"y'z w'").Should().Equal("exec:cat xyz w");

    [Fact]
    public void Empty_quotes_are_an_empty_word() => Words("a '' \"\" b").Should().Equal("a", "", "", "b");

    [Theory]
    [InlineData("migrate exec:'cat", "unterminated ' quote")]
    [InlineData("echo \"abc", "unterminated \" quote")]
    [InlineData("echo \"abc\\", "unterminated \" quote")]
    [InlineData("echo abc\\", "trailing backslash")]
    public void Malformed_lines_are_reported(string line, string expected)
    {
        HmpTokenizer.TryTokenize(line, out _, out string? error).Should().BeFalse();
        error.Should().Be(expected);
    }
}
