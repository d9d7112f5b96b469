using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>The machine-readable outputs: one JSON object each, every key kebab-case, numbers that agree with each other.</summary>
public sealed class JsonOutputTests
{
    [KvmFact]
    public void Inspect_verify_and_stats_print_kebab_case_json_that_agrees()
    {
        string image = GuestFiles.TempPath("json.mvs");
        string stats = GuestFiles.TempPath("stats.jsonl");
        var run = MinivmmProcess.Run("run", "--kernel", GuestFiles.Writer, "--mem", "64M", "--cmdline", "mb=8 sweeps=0 report_ms=0",
            "--snapshot-to", image, "--snapshot-after", "200ms", "--exit-after-snapshot", "--serial", "none", "--snapshot-stats", stats);
        run.ExitCode.Should().Be(0, run.Stderr);

        var inspect = MinivmmProcess.Run("snapshot", "inspect", "--json", image);
        inspect.ExitCode.Should().Be(0, inspect.Stderr);
        var header = JsonNode.Parse(inspect.Stdout)!.AsObject();
        AllKeysKebab(header);
        ((string?)header["engine"]).Should().Be("write-tracking");
        ((long?)header["vm-config"]!["memory-bytes"]).Should().Be(64L << 20);

        var verify = MinivmmProcess.Run("snapshot", "verify", "--json", image);
        verify.ExitCode.Should().Be(0, verify.Stderr);
        var checkedPages = JsonNode.Parse(verify.Stdout)!.AsObject();
        AllKeysKebab(checkedPages);
        ((bool?)checkedPages["valid"]).Should().BeTrue();
        ((long?)checkedPages["pages-checked"]).Should().Be((long?)header["pages-present"]);

        var line = JsonNode.Parse(File.ReadAllLines(stats).Single())!.AsObject();
        AllKeysKebab(line);
        ((long?)line["pages-saved"]).Should().Be((long?)header["pages-present"], "the stats count the pages the file holds");

        var bytes = File.ReadAllBytes(image);
        long dataOffset = (long)header["regions"]![0]!["file-offset"]!;
        bytes[dataOffset + (long)MiniVmm.Firmware.GuestAbi.BufferGpa + 8] ^= 0x01;
        string damaged = GuestFiles.TempPath("json-damaged.mvs");
        File.WriteAllBytes(damaged, bytes);
        var bad = MinivmmProcess.Run("snapshot", "verify", "--json", damaged);
        bad.ExitCode.Should().Be(120);
        var report = JsonNode.Parse(bad.Stdout)!.AsObject();
        ((bool?)report["valid"]).Should().BeFalse();
        ((long?)report["error-count"]).Should().BeGreaterThan(0);
        File.Delete(image); File.Delete(stats); File.Delete(damaged);
    }

    internal static void AllKeysKebab(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o)
                {
                    key.Should().MatchRegex("^[a-z0-9]+(-[a-z0-9]+)*$");
                    AllKeysKebab(value);
                }
                break;
            case JsonArray a:
                foreach (var e in a) AllKeysKebab(e);
                break;
        }
    }
}
