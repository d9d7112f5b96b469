using System.Text.Json.Nodes;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Machine.State;

namespace MiniVmm.Machine.Tests;

public sealed class RecordedVmConfigTests
{
    private static readonly RecordedVmConfig Sample = new()
    {
        MemoryBytes = 64UL << 20, Vcpus = 2, KernelPath = "/k.elf", CommandLine = "a tsc_khz=1", UserCommandLine = "a",
        TscKhz = 1, HugePages = true, Drives = [new RecordedDrive("/d.img", true, "none")], Rng = true,
        Nets = [new RecordedNet("tap0", "52:54:00:12:34:56")],
    };

    [Fact]
    public void It_is_written_with_kebab_case_keys_at_version_2_and_reads_back()
    {
        string json = Sample.ToJson();
        var o = JsonNode.Parse(json)!.AsObject();
        o.Select(p => p.Key).Should().Contain(["format-version", "memory-bytes", "vcpus", "kernel-path", "user-command-line", "huge-pages", "drives", "nets"]);
        ((int)o["format-version"]!).Should().Be(2);
        o["drives"]![0]!.AsObject().Select(p => p.Key).Should().Equal("path", "read-only", "cache");
        RecordedVmConfig.FromJson(json).Should().BeEquivalentTo(Sample);
    }

    [Fact]
    public void A_version_1_pascal_case_config_still_reads()
    {
        const string v1 = """{"FormatVersion":1,"MemoryBytes":67108864,"Vcpus":1,"KernelPath":"/k.elf","CommandLine":"x","UserCommandLine":"x","TscKhz":5,"HugePages":false,"Devices":[],"Drives":[{"Path":"/d.img","ReadOnly":false,"Cache":"writeback"}],"Rng":false}""";
        var config = RecordedVmConfig.FromJson(v1);
        config.MemoryBytes.Should().Be(64UL << 20);
        config.Drives.Should().Equal(new RecordedDrive("/d.img", false, "writeback"));
        config.Nets.Should().BeEmpty("version 1 files predate network devices");
    }

    [Theory]
    [InlineData("""{"FormatVersion":2,"MemoryBytes":1,"Vcpus":1,"KernelPath":"","CommandLine":"","UserCommandLine":"","TscKhz":0,"HugePages":false,"Devices":[],"Drives":[],"Rng":false}""", "version 2 is not supported with PascalCase keys")]
    [InlineData("""{"format-version":1,"memory-bytes":1,"vcpus":1,"kernel-path":"","command-line":"","user-command-line":"","tsc-khz":0,"huge-pages":false,"devices":[],"drives":[],"rng":false}""", "version 1 is not supported with kebab-case keys")]
    [InlineData("""{"format-version":2,"MemoryBytes":1}""", "malformed")]
    [InlineData("""{"format-version":2,"memory-bytes":1,"memory-bytes":2}""", "malformed")]
    [InlineData("""[1]""", "malformed")]
    public void A_config_whose_keys_and_version_disagree_or_that_is_malformed_is_refused(string json, string message)
    {
        FluentActions.Invoking(() => RecordedVmConfig.FromJson(json)).Should().Throw<StateRestoreException>().WithMessage($"*{message}*");
    }
}
