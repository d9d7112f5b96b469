using System.CommandLine;
using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Snapshot;

namespace MiniVmm.Cli;

/// <summary>`minivmm run`: boot a kernel (PVH image, vmlinux or bzImage) and exit with the guest's status.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var kernel = new Option<string>("--kernel") { Description = "kernel to boot: a PVH ELF image (e.g. from `minivmm firmware`), a Linux vmlinux or bzImage", Required = true };
        var initrd = new Option<string?>("--initrd") { Description = "initial RAM disk for a Linux kernel (vmlinux or bzImage)" };
        var cmdline = new Option<string>("--cmdline") { Description = "guest command line", DefaultValueFactory = _ => "" };
        var mem = new Option<string>("--mem") { Description = "guest RAM: 512M, 1G, or a plain number of MiB (as QEMU's -m)", DefaultValueFactory = _ => "512M" };
        var cpus = new Option<int>("--cpus") { Description = "number of vCPUs", DefaultValueFactory = _ => 1 };
        var serial = new Option<string>("--serial") { Description = "serial console: stdio | file:PATH | none", DefaultValueFactory = _ => "stdio" };
        var hugePages = new Option<bool>("--huge-pages") { Description = "back guest RAM with transparent huge pages (default true; --huge-pages false turns it off)", DefaultValueFactory = _ => true };
        var drives = new Option<string[]>("--drive")
        {
            Description = "virtio-blk disk on a raw image: file=PATH[,readonly=on][,cache=none|writeback] (repeatable)",
            AllowMultipleArgumentsPerToken = false,
            DefaultValueFactory = _ => [],
        };
        var nets = new Option<string[]>("--net")
        {
            Description = "virtio-net device on an existing tap interface: tap=NAME[,mac=52:54:00:12:34:56] (repeatable)",
            AllowMultipleArgumentsPerToken = false,
            DefaultValueFactory = _ => [],
        };
        var rng = new Option<bool>("--rng") { Description = "add a virtio-rng device fed by the host's getrandom" };
        var logLevel = CommonOptions.LogLevel();
        var qmp = QmpCliOption.Create();
        var paused = CommonOptions.Paused();
        var config = new Option<string?>("--config") { Description = "read options from a JSON file: {\"kernel\": \"...\", \"mem\": \"512M\", ...} (keys are these options' names; options given here win)" };
        var snap = new SnapshotCliOptions();
        var s3 = new S3CliOptions();

        var command = new Command("run", "Boot a guest and run it until it exits") { kernel, initrd, cmdline, mem, cpus, serial, hugePages, drives, nets, rng, logLevel, qmp, paused, config };
        foreach (var o in snap.All) command.Options.Add(o);
        foreach (var o in s3.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            if (!CommonOptions.TryGetLevel(parse.GetValue(logLevel)!, out var level, out string? levelError)) return CommonOptions.Usage(parse, levelError!);
            if (!TryParseMemory(parse.GetValue(mem)!, out ulong memBytes, out string? memError)) return CommonOptions.Usage(parse, memError!);
            int vcpus = parse.GetValue(cpus);
            if (vcpus < 1 || vcpus > VmConfig.MaxVcpus)
                return CommonOptions.Usage(parse, $"--cpus: '{(parse.GetResult(cpus)?.Tokens is { Count: > 0 } tokens ? tokens[0].Value : null) ?? vcpus.ToString()}' is outside 1..{VmConfig.MaxVcpus}");
            if (!TryParseSerial(parse.GetValue(serial)!, out var serialTarget))
                return CommonOptions.Usage(parse, $"--serial: '{parse.GetValue(serial)}' is not stdio, none or file:PATH");
            var driveSpecs = new List<MiniVmm.Devices.Virtio.Block.DriveSpec>();
            foreach (string d in parse.GetValue(drives) ?? [])
            {
                try { driveSpecs.Add(MiniVmm.Devices.Virtio.Block.DriveSpec.Parse(d)); }
                catch (FormatException e) { return CommonOptions.Usage(parse, "--drive: " + e.Message); }
            }
            var netSpecs = new List<MiniVmm.Devices.Virtio.Net.NetSpec>();
            foreach (string n in parse.GetValue(nets) ?? [])
            {
                try { netSpecs.Add(MiniVmm.Devices.Virtio.Net.NetSpec.Parse(n)); }
                catch (FormatException e) { return CommonOptions.Usage(parse, e.Message.StartsWith("--net", StringComparison.Ordinal) ? e.Message : "--net: " + e.Message); }
            }
            var config = new VmConfig
            {
                Drives = driveSpecs,
                Nets = netSpecs,
                Rng = parse.GetValue(rng),
                KernelPath = parse.GetValue(kernel)!,
                InitrdPath = parse.GetValue(initrd),
                CommandLine = parse.GetValue(cmdline)!,
                MemoryBytes = memBytes,
                Vcpus = vcpus,
                HugePages = parse.GetValue(hugePages),
                Serial = serialTarget,
            };
            if (!TryGetSnapshotPlan(parse, snap, out var plan, out string? snapError)) return CommonOptions.Usage(parse, snapError!);
            if (plan?.Destination.StartsWith("s3://", StringComparison.Ordinal) == true && driveSpecs.Any(d => !d.ReadOnly))
                return CommonOptions.Usage(parse, "--snapshot-to s3:// cannot capture a writable --drive yet: snapshot to a file, or attach the drive with readonly=on");
            if (plan?.IncrementalFrom is not null)
                return CommonOptions.Usage(parse, "--incremental-from applies to restore: a booted VM has no snapshot to build on " +
                    "(--snapshot-incremental makes its first snapshot a full one and the later ones links of it)");
            if (!QmpCliOption.TryParse(parse.GetValue(qmp), out var qmpSpecs, out string? qmpError)) return CommonOptions.Usage(parse, qmpError!);
            if (parse.GetValue(paused) && qmpSpecs.Count == 0) return CommonOptions.Usage(parse, "--paused needs --qmp: the monitor's cont starts the VM");
            if (!TryGetS3(parse, s3, plan, qmpSpecs, storeSource: false, out var s3Access, out string? s3Error)) return CommonOptions.Usage(parse, s3Error!);
            using var loggers = Logging.Create(level);
            return Execute(config, plan, qmpSpecs, loggers, parse.GetValue(paused), s3Access);
        });
        return command;
    }

    /// <summary>--mem: a size, a plain number in MiB; range errors quote what was typed, not a byte count.</summary>
    internal static bool TryParseMemory(string text, out ulong bytes, out string? error)
    {
        if (!SizeParser.TryParse(text, out bytes, out error, unitlessScale: SizeParser.MiB)) { error = "--mem: " + error; return false; }
        error = bytes < VmConfig.MinMemory ? $"--mem: '{text}' is too small: at least {VmConfig.MinMemory >> 20} MiB"
            : bytes > VmConfig.MaxMemory ? $"--mem: '{text}' is more than the supported {VmConfig.MaxMemory >> 20} MiB"
            : bytes % 4096 != 0 ? $"--mem: '{text}' is not a multiple of 4 KiB"
            : null;
        return error is null;
    }

    internal static bool TryParseSerial(string text, out SerialTarget target)
    {
        target = text switch
        {
            "stdio" => new SerialTarget.Stdio(),
            "none" => new SerialTarget.None(),
            _ when text.StartsWith("file:", StringComparison.Ordinal) && text.Length > 5 => new SerialTarget.File(text[5..]),
            _ => null!,
        };
        return target is not null;
    }

    internal static bool TryGetSnapshotPlan(ParseResult parse, SnapshotCliOptions snap, out SnapshotPlan? plan, out string? error)
    {
        plan = null;
        error = null;
        string? to = parse.GetValue(snap.To);
        string? after = parse.GetValue(snap.After);
        if (!SnapshotCliOptions.TryParseMode(parse.GetValue(snap.Mode)!, out var mode))
        { error = $"--snapshot-mode: '{parse.GetValue(snap.Mode)}' is not write-tracking, stop-copy or dirty-log"; return false; }
        TimeSpan? delay = null;
        if (after is not null)
        {
            if (!SnapshotCliOptions.TryParseDuration(after, out var d)) { error = $"--snapshot-after: '{after}' is not a duration (e.g. 500ms, 2s)"; return false; }
            delay = d;
        }
        double rate = parse.GetValue(snap.RateLimit);
        if (rate < 0 || double.IsNaN(rate)) { error = "--snapshot-rate-limit must be 0 or more MiB/s"; return false; }
        TimeSpan? convergeTimeout = null;
        if (parse.GetValue(snap.ConvergeTimeout) is { } ct)
        {
            if (!SnapshotCliOptions.TryParseDuration(ct, out var d)) { error = $"--snapshot-converge-timeout: '{ct}' is not a duration (e.g. 5s)"; return false; }
            if (mode != SnapshotMode.DirtyLog) { error = "--snapshot-converge-timeout only applies to --snapshot-mode dirty-log"; return false; }
            convergeTimeout = d;
        }
        TimeSpan stallTimeout = new SnapshotOptions().StallTimeout;
        if (parse.GetValue(snap.Timeout) is { } st)
        {
            if (!SnapshotCliOptions.TryParseDuration(st, out var d)) { error = $"--snapshot-timeout: '{st}' is not a duration (e.g. 10s, 0 = never)"; return false; }
            stallTimeout = d == TimeSpan.Zero ? System.Threading.Timeout.InfiniteTimeSpan : d;
        }
        long faultBuffer = SnapshotOptions.DefaultFaultBufferBytes;
        if (parse.GetValue(snap.Buffer) is { } bufferText)
        {
            if (!SizeParser.TryParse(bufferText, out ulong bytes, out string? sizeError, unitlessScale: SizeParser.MiB)) { error = "--snapshot-buffer: " + sizeError; return false; }
            if (mode != SnapshotMode.WriteTracking) { error = "--snapshot-buffer only applies to --snapshot-mode write-tracking"; return false; }
            if (bytes < SnapshotOptions.MinFaultBufferBytes || bytes > 64UL << 30)
            { error = $"--snapshot-buffer: {bufferText} is outside {SnapshotOptions.MinFaultBufferBytes >> 20} MiB..64 GiB"; return false; }
            faultBuffer = (long)bytes;
        }
        bool realtimeFaults = parse.GetValue(snap.RealtimeFaults);
        if (realtimeFaults && mode != SnapshotMode.WriteTracking) { error = "--snapshot-realtime-faults only applies to --snapshot-mode write-tracking"; return false; }
        var options = new SnapshotOptions
        {
            Mode = mode,
            FaultBufferBytes = faultBuffer,
            RealtimeFaultThread = realtimeFaults,
            StallTimeout = stallTimeout,
            DirtyLogConvergeTimeout = convergeTimeout,
            RateLimitBytesPerSecond = (long)(rate * (1 << 20)),
            FaultAroundPages = parse.GetValue(snap.FaultAround),
        };
        try { options.Validate(); }
        catch (ArgumentException e) { error = "--snapshot-fault-around: " + e.Message; return false; }
        bool exitAfter = parse.GetValue(snap.ExitAfter);
        if (to is not null && SnapshotNaming.Validate(to) is { } nameError) { error = nameError; return false; }
        if (to is null && (delay is not null || exitAfter)) { error = "--snapshot-after and --exit-after-snapshot need --snapshot-to"; return false; }
        string? from = parse.GetValue(snap.IncrementalFrom);
        bool incremental = parse.GetValue(snap.Incremental) || from is not null;
        if (incremental)
        {
            if (to is null) { error = "--snapshot-incremental and --incremental-from need --snapshot-to"; return false; }
            if (mode != SnapshotMode.WriteTracking) { error = "incremental snapshots need --snapshot-mode write-tracking"; return false; }
            if (to.StartsWith("exec:", StringComparison.Ordinal)) { error = "incremental snapshots need a file destination, not exec:"; return false; }
        }
        plan = to is null ? null : new SnapshotPlan(to, options, delay, exitAfter, parse.GetValue(snap.Stats), parse.GetValue(snap.Overwrite),
            incremental, from);
        return true;
    }

    /// <summary>
    /// --s3-profile and --s3-endpoint; with --snapshot-to s3:// the settings are resolved now, so that a missing key or
    /// profile is a usage error at start rather than a failed snapshot later (each snapshot resolves them again: rotated
    /// keys are picked up).
    /// </summary>
    internal static bool TryGetS3(ParseResult parse, S3CliOptions s3, SnapshotPlan? plan, IReadOnlyList<QmpSpec> qmpSpecs, bool storeSource,
        out S3Access access, out string? error)
    {
        bool snapshotsToStore = plan is not null && MiniVmm.Snapshot.ObjectStore.ObjectUri.IsObjectUri(plan.Destination);
        if (!s3.TryGet(parse, storeSource || snapshotsToStore || qmpSpecs.Count > 0, out access, out error)) return false;
        if (snapshotsToStore && access.Problem() is { } problem) { error = "--snapshot-to s3://: " + problem; return false; }
        return true;
    }

    private static int Execute(VmConfig config, SnapshotPlan? plan, IReadOnlyList<QmpSpec> qmpSpecs, ILoggerFactory loggers, bool paused, S3Access s3)
    {
        var log = loggers.CreateLogger("minivmm");
        Vm vm;
        try { vm = Vm.Create(config, loggers); }
        catch (Exception e) { return CommonOptions.ReportStartupFailure(log, e); }

        return VmSession.Run(vm, plan, qmpSpecs, loggers, paused, s3);
    }
}
