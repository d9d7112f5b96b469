namespace MiniVmm.Cli.Tests;

public sealed class SizeParserTests
{
    [Theory]
    [InlineData("65536", 65536UL)]
    [InlineData("0", 0UL)]
    [InlineData("4k", 4096UL)]
    [InlineData("4K", 4096UL)]
    [InlineData("512M", 512UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("2MiB", 2UL << 20)]
    [InlineData("2mib", 2UL << 20)]
    [InlineData("1KB", 1024UL)]
    [InlineData("10B", 10UL)]
    [InlineData("  8M ", 8UL << 20)]
    [InlineData("18446744073709551615", ulong.MaxValue)]
    [InlineData("16777215G", 16777215UL << 30)]
    [InlineData("1T", 1UL << 40)]
    public void Parses_binary_sizes(string text, ulong expected)
    {
        SizeParser.TryParse(text, out ulong bytes, out string? error).Should().BeTrue(error);
        bytes.Should().Be(expected);
        error.Should().BeNull();
    }

    [Theory]
    [InlineData("1P")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("1.5G")]
    [InlineData("0x10")]
    [InlineData("1 G")]
    [InlineData("M")]
    [InlineData("B")]
    [InlineData("iB")]
    [InlineData("KiB")]
    [InlineData("twelve")]
    [InlineData("18446744073709551616")]
    public void Rejects_what_is_not_a_size_and_names_it(string text)
    {
        SizeParser.TryParse(text, out ulong bytes, out string? error).Should().BeFalse();
        bytes.Should().Be(0);
        error.Should().Contain($"'{text}'");
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void Rejects_an_empty_size(string text)
    {
        SizeParser.TryParse(text, out _, out string? error).Should().BeFalse();
        error.Should().Be("empty size");
    }

    [Theory]
    [InlineData("17179869184G")]  // 2^34 GiB = 2^64 bytes: wraps to exactly 0 without the check
    [InlineData("18014398509481985K")] // wraps to 1024
    [InlineData("17179869185G")] // wraps to 1 GiB
    public void Rejects_sizes_that_overflow_64_bits(string text)
    {
        SizeParser.TryParse(text, out _, out string? error).Should().BeFalse();
        error.Should().Be($"'{text}' is too large");
    }
}
