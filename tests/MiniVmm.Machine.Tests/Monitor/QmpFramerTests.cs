using System.Text;
using MiniVmm.Machine.Monitor;

using MiniVmm.Qmp;

namespace MiniVmm.Machine.Tests.Monitor;

public sealed class QmpFramerTests
{
    private static List<QmpFramer.Frame> Feed(QmpFramer framer, string text) => framer.Feed(Encoding.UTF8.GetBytes(text)).ToList();

    private static List<QmpFramer.Frame> Feed(string text) => Feed(new QmpFramer(), text);

    [Fact]
    public void A_line_terminated_object_is_one_message() =>
        Feed("{\"execute\":\"qmp_capabilities\"}\n").Should().Equal(new QmpFramer.Frame("{\"execute\":\"qmp_capabilities\"}", null));

    [Fact]
    public void An_object_without_a_newline_is_complete_when_it_closes() =>
        Feed("{\"execute\":\"query-status\"}").Should().ContainSingle().Which.Text.Should().Be("{\"execute\":\"query-status\"}");

    [Fact]
    public void Back_to_back_objects_and_whitespace_between_them_split_correctly() =>
        Feed(" {\"a\":1}{\"b\":[2,{\"c\":3}]}\r\n\t[4] ").Select(f => f.Text)
            .Should().Equal("{\"a\":1}", "{\"b\":[2,{\"c\":3}]}", "[4]");

    [Fact]
    public void Braces_and_escaped_quotes_inside_strings_do_not_count()
    {
        const string message = "{\"arguments\":{\"uri\":\"exec:echo '}{' \\\"]\\\" \\\\\"}}";
        Feed(message + "{\"x\":0}").Select(f => f.Text).Should().Equal(message, "{\"x\":0}");
    }

    [Fact]
    public void A_message_fed_one_byte_at_a_time_arrives_once_at_its_last_byte()
    {
        var framer = new QmpFramer();
        byte[] bytes = Encoding.UTF8.GetBytes("{\"s\":\"é ü\",\"n\":[1,2]}");
        for (int i = 0; i < bytes.Length - 1; i++) framer.Feed(bytes.AsSpan(i, 1)).Should().BeEmpty();
        framer.Feed(bytes.AsSpan(^1)).Should().ContainSingle().Which.Text.Should().Be("{\"s\":\"é ü\",\"n\":[1,2]}");
    }

    [Fact]
    public void A_stray_closing_brace_is_a_parse_error_and_framing_recovers()
    {
        var frames = Feed("}{\"ok\":1}");
        frames.Should().HaveCount(2);
        frames[0].Should().Be(new QmpFramer.Frame(null, "JSON parse error, unexpected '}'"));
        frames[1].Text.Should().Be("{\"ok\":1}");
    }

    [Fact]
    public void A_bare_word_is_handed_on_as_a_malformed_message_at_the_next_delimiter()
    {
        var framer = new QmpFramer();
        Feed(framer, "hello wor").Should().BeEmpty();
        Feed(framer, "ld\n").Should().Equal(new QmpFramer.Frame("hello world", null));
        Feed(framer, "42{\"a\":1}").Select(f => f.Text).Should().Equal("42", "{\"a\":1}");
    }

    [Fact]
    public void An_oversized_message_is_dropped_with_the_rest_of_its_line_and_the_next_line_is_served()
    {
        var framer = new QmpFramer();
        string huge = "{\"execute\":\"" + new string('x', QmpFramer.MaxMessageBytes) + "\"}";
        var frames = Feed(framer, huge + " more garbage }}}\n{\"execute\":\"cont\"}\n");
        frames.Should().HaveCount(2);
        frames[0].Text.Should().BeNull();
        frames[0].Error.Should().Contain(QmpFramer.MaxMessageBytes.ToString());
        frames[1].Text.Should().Be("{\"execute\":\"cont\"}");
    }

    [Fact]
    public void A_message_of_exactly_the_limit_is_accepted()
    {
        string body = "{\"p\":\"" + new string('y', QmpFramer.MaxMessageBytes - 8) + "\"}";
        Encoding.UTF8.GetByteCount(body).Should().Be(QmpFramer.MaxMessageBytes);
        Feed(body).Should().ContainSingle().Which.Text.Should().Be(body);
    }

    [Fact]
    public void An_endless_bare_token_is_bounded_too()
    {
        var frames = Feed(new string('z', QmpFramer.MaxMessageBytes + 10) + "\n{}");
        frames.Select(f => f.Error is null ? f.Text : "error").Should().Equal("error", "{}");
    }

    [Fact]
    public void An_unfinished_message_yields_nothing_yet() => Feed("{\"execute\":\"sto").Should().BeEmpty();
}
