using FluentAssertions;
using MiniVmm.Core.Boot;

namespace MiniVmm.Core.Tests.Boot;

public sealed class LinuxCommandLineTests
{
    [Theory]
    [InlineData("", 2300000, "console=ttyS0 tsc_early_khz=2300000")]
    [InlineData("root=/dev/vda", 1000, "root=/dev/vda console=ttyS0 tsc_early_khz=1000")]
    [InlineData("console=hvc0", 1000, "console=hvc0 tsc_early_khz=1000")]
    [InlineData("quiet tsc_early_khz=5", 1000, "quiet tsc_early_khz=5 console=ttyS0")]
    [InlineData("  quiet  ", 0, "quiet console=ttyS0")]
    [InlineData("myconsole=x", 0, "myconsole=x console=ttyS0")]
    public void Defaults_are_appended_unless_the_line_sets_them(string user, int khz, string expected) =>
        LinuxCommandLine.WithDefaults(user, khz).Should().Be(expected);
}
