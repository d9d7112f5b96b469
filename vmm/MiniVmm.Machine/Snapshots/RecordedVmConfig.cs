using System.Text.Json;
using System.Text.Json.Serialization;
using MiniVmm.Machine.State;

namespace MiniVmm.Machine.Snapshots;

/// <summary>The VM configuration as recorded in a snapshot header: what restore needs to rebuild the same machine.</summary>
public sealed record RecordedVmConfig
{
    public int FormatVersion { get; init; } = 1;
    public ulong MemoryBytes { get; init; }
    public int Vcpus { get; init; }
    public string KernelPath { get; init; } = "";
    /// <summary>The <c>--initrd</c> file the VM booted with (restore does not read it: its contents are in RAM); left
    /// out of the JSON when there was none, so such snapshots read the same as before the option existed.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? InitrdPath { get; init; }
    /// <summary>The guest's command line as it ran, with what MiniVmm appended (tsc_khz=, virtio_mmio.device=).</summary>
    public string CommandLine { get; init; } = "";
    /// <summary>The command line as the user gave it (what `restore --print-config` prints back).</summary>
    public string UserCommandLine { get; init; } = "";
    public int TscKhz { get; init; }
    public bool HugePages { get; init; }
    public string[] Devices { get; init; } = [];
    /// <summary>virtio-blk drives in slot order (the image contents are not part of the snapshot).</summary>
    public RecordedDrive[] Drives { get; init; } = [];
    public bool Rng { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, RecordedVmConfigJson.Default.RecordedVmConfig);

    public static RecordedVmConfig FromJson(string json)
    {
        RecordedVmConfig? config;
        try { config = JsonSerializer.Deserialize(json, RecordedVmConfigJson.Default.RecordedVmConfig); }
        catch (JsonException e) { throw new StateRestoreException("the snapshot's VM configuration is malformed: " + e.Message, e); }
        if (config is null) throw new StateRestoreException("the snapshot has no VM configuration");
        // The source-generated reader leaves a missing key's property null (initializers do not run): check them all.
        if (config.KernelPath is null || config.CommandLine is null || config.UserCommandLine is null || config.Devices is null || config.Devices.Any(d => d is null)
            || config.Drives is null || config.Drives.Any(d => d is null))
            throw new StateRestoreException("the snapshot's VM configuration is malformed: a field is null");
        if (config.FormatVersion != 1) throw new StateRestoreException($"VM configuration version {config.FormatVersion} is not supported");
        return config;
    }

    /// <summary>The host CPU model string recorded in headers and compared on restore.</summary>
    public static string HostCpuModel()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        return "unknown";
    }
}

/// <summary>One <c>--drive</c> as recorded: restore reopens the same image with the same options.</summary>
public sealed record RecordedDrive(string Path, bool ReadOnly, string Cache);

[JsonSerializable(typeof(RecordedVmConfig))]
// Hostile input: a key given twice, an unknown key or a null where a value belongs is a malformed config, not a guess.
[JsonSourceGenerationOptions(WriteIndented = false, AllowDuplicateProperties = false, RespectNullableAnnotations = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
internal sealed partial class RecordedVmConfigJson : JsonSerializerContext;
