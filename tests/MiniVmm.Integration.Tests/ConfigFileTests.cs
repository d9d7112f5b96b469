using System.Text.Json.Nodes;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>`run --config` and `restore --print-config`: the printed file boots the same machine; bad files name the key.</summary>
public sealed class ConfigFileTests
{
    [KvmFact]
    public void Print_config_of_a_snapshot_boots_the_same_machine_with_flags_overriding()
    {
        string image = GuestFiles.TempPath("config.mvs");
        string disk = GuestFiles.TempPath("config,disk.img"); // a comma in the path must survive the round trip
        File.WriteAllBytes(disk, new byte[1 << 20]);
        MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "96", "--cpus", "2", "--cmdline", "mb=8 cpus=2 sweeps=0 report_ms=0",
            "--drive", $"file={disk.Replace(",", ",,")},readonly=on", "--rng",
            "--snapshot-to", image, "--snapshot-after", "200ms", "--exit-after-snapshot", "--serial", "none").ExitCode.Should().Be(0);
        var printed = MinivmmProcess.Run("restore", "--print-config", image);
        printed.ExitCode.Should().Be(0, printed.Stderr);
        var config = JsonNode.Parse(printed.Stdout)!.AsObject();
        ((string?)config["kernel"]).Should().Be(GuestFiles.Writer);
        ((string?)config["mem"]).Should().Be("96M");
        ((int?)config["cpus"]).Should().Be(2);
        ((string?)config["cmdline"]).Should().Be("mb=8 cpus=2 sweeps=0 report_ms=0",
            "without the tsc_khz= and virtio_mmio.device= the recording host appended");
        config["drive"]!.AsArray().Select(d => (string?)d).Should().Equal($"file={disk.Replace(",", ",,")},readonly=on,cache=writeback");
        ((bool?)config["rng"]).Should().BeTrue();

        string file = GuestFiles.TempPath("vm.json");
        File.WriteAllText(file, printed.Stdout);
        // The file's machine, with a finite run given on the command line: the flag wins over the file's cmdline.
        var run = MinivmmProcess.Run("run", "--config", file, "--cmdline", "mb=8 cpus=2 sweeps=3 report_ms=0", "--serial", "none", "--log-level", "information");
        run.ExitCode.Should().Be(0, run.Stderr);
        run.Stderr.Should().Contain("2 vCPU(s), 96 MiB").And.Contain("sweeps=3");
        File.Delete(image); File.Delete(file); File.Delete(disk);
    }

    [Theory]
    [InlineData("""{"kernel": "x", "memory": "1G"}""", "'memory' is not a run option")]
    [InlineData("""{"kernel": "x", "cpus": [2]}""", "'cpus' must be")]
    [InlineData("""{"kernel": "x", "mem": "lots"}""", "bad.json: 'mem': 'lots' is not")]
    [InlineData("""{"kernel": "x", "cpus": 99}""", "bad.json: 'cpus': '99' is outside")]
    [InlineData("""{"kernel": "x", "cpus": "two"}""", "bad.json: 'cpus': 'two' is not a whole number")]
    [InlineData("""{"kernel": "x", "serial": "tty"}""", "bad.json: 'serial': 'tty' is not stdio")]
    [InlineData("""["kernel"]""", "not a JSON object")]
    [InlineData("""{"kernel": "x", "cmdline": "--rng"}""", "kernel 'x' does not exist")] // a value is never read as an option
    public void A_bad_config_file_is_exit_120_naming_the_key(string json, string message)
    {
        string file = GuestFiles.TempPath("bad.json");
        File.WriteAllText(file, json);
        var r = MinivmmProcess.Run("run", "--config", file);
        r.ExitCode.Should().Be(120);
        r.Stderr.Should().Contain(message);
        File.Delete(file);
    }

    [KvmFact]
    public void A_bad_value_typed_on_the_command_line_names_the_option_even_with_a_config_file()
    {
        string file = GuestFiles.TempPath("typed.json");
        File.WriteAllText(file, """{"kernel": "x", "cpus": 2}""");
        var r = MinivmmProcess.Run("run", "--config", file, "--mem", "lots");
        r.ExitCode.Should().Be(120);
        r.Stderr.Should().Contain("--mem: 'lots' is not").And.NotContain("typed.json");
        File.Delete(file);
    }
}
