using System.CommandLine;
using MiniVmm.Machine.Snapshots;

namespace MiniVmm.Cli.Tests;

/// <summary>--s3-profile and --s3-endpoint: on both commands, checked, and refused where nothing would use them.</summary>
public sealed class S3CliOptionsTests
{
    private static (S3CliOptions Options, ParseResult Parse) Parse(params string[] args)
    {
        var s3 = new S3CliOptions();
        var command = new RootCommand();
        foreach (var o in s3.All) command.Options.Add(o);
        return (s3, command.Parse(args));
    }

    [Fact]
    public void Run_and_restore_both_take_the_options_and_no_secret_option_exists()
    {
        foreach (var command in new[] { RunCommand.Create(), RestoreCommand.Create() })
        {
            command.Options.Select(o => o.Name).Should().Contain(["--s3-profile", "--s3-endpoint"], command.Name);
            command.Options.Select(o => o.Name).Should().NotContain(n => n.Contains("secret") || n.Contains("access-key") || n.Contains("token"), command.Name);
        }
    }

    [Fact]
    public void Given_options_become_the_access()
    {
        var (s3, parse) = Parse("--s3-profile", "ceph", "--s3-endpoint", "http://rgw:7480");
        s3.TryGet(parse, usable: true, out var access, out string? error).Should().BeTrue(error);
        access.Should().Be(new S3Access("ceph", "http://rgw:7480"));
    }

    [Fact]
    public void No_options_are_the_default_whether_usable_or_not()
    {
        var (s3, parse) = Parse();
        s3.TryGet(parse, usable: false, out var access, out _).Should().BeTrue();
        access.Should().Be(S3Access.Default);
    }

    [Theory]
    [InlineData("--s3-endpoint", "rgw:7480", "is not an http(s) URL")]
    [InlineData("--s3-endpoint", "ftp://rgw", "is not an http(s) URL")]
    [InlineData("--s3-profile", " ", "is not a profile name")]
    [InlineData("--s3-profile", "a]", "is not a profile name")]
    public void Bad_values_are_usage_errors(string option, string value, string message)
    {
        var (s3, parse) = Parse(option, value);
        s3.TryGet(parse, usable: true, out _, out string? error).Should().BeFalse();
        error.Should().StartWith(option + ":").And.Contain(message);
    }

    [Fact]
    public void Options_nothing_would_use_are_refused()
    {
        var (s3, parse) = Parse("--s3-profile", "ceph");
        s3.TryGet(parse, usable: false, out _, out string? error).Should().BeFalse();
        error.Should().Contain("--s3-profile applies to s3:// locations");
    }
}
