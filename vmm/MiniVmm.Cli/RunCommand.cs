using System.CommandLine;
using System.Runtime.InteropServices;
using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Machine;

namespace MiniVmm.Cli;

/// <summary>`minivmm run`: boot a PVH image and exit with the guest's status.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var kernel = new Option<string>("--kernel") { Description = "PVH ELF image to boot (e.g. from `minivmm firmware`)", Required = true };
        var cmdline = new Option<string>("--cmdline") { Description = "guest command line", DefaultValueFactory = _ => "" };
        var mem = new Option<string>("--mem") { Description = "guest RAM (e.g. 512M, 1G)", DefaultValueFactory = _ => "512M" };
        var cpus = new Option<int>("--cpus") { Description = "number of vCPUs", DefaultValueFactory = _ => 1 };
        var serial = new Option<string>("--serial") { Description = "serial console: stdio | file:PATH | none", DefaultValueFactory = _ => "stdio" };
        var hugePages = new Option<bool>("--huge-pages") { Description = "back guest RAM with transparent huge pages" };
        var logLevel = CommonOptions.LogLevel();

        var command = new Command("run", "Boot a guest and run it until it exits") { kernel, cmdline, mem, cpus, serial, hugePages, logLevel };
        command.SetAction(parse =>
        {
            if (!CommonOptions.TryGetLevel(parse.GetValue(logLevel)!, out var level)) return ExitCodes.BadInput;
            if (!SizeParser.TryParse(parse.GetValue(mem)!, out ulong memBytes, out string? sizeError))
                return CommonOptions.Fail("--mem: " + sizeError);
            if (!TryParseSerial(parse.GetValue(serial)!, out var serialTarget))
                return CommonOptions.Fail($"--serial: '{parse.GetValue(serial)}' is not stdio, none or file:PATH");
            var config = new VmConfig
            {
                KernelPath = parse.GetValue(kernel)!,
                CommandLine = parse.GetValue(cmdline)!,
                MemoryBytes = memBytes,
                Vcpus = parse.GetValue(cpus),
                HugePages = parse.GetValue(hugePages),
                Serial = serialTarget,
            };
            using var loggers = Logging.Create(level);
            return Execute(config, loggers);
        });
        return command;
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

    private static int Execute(VmConfig config, ILoggerFactory loggers)
    {
        var log = loggers.CreateLogger("minivmm");
        Vm vm;
        try { vm = Vm.Create(config, loggers); }
        catch (Exception e) { return CommonOptions.ReportStartupFailure(log, e); }

        using (vm)
        using (PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop))
        using (PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop))
        {
            var status = vm.Run();
            if (status.Reason != VmStopReason.GuestExit) log.LogWarning("VM stopped: {Status}", status);
            else log.LogInformation("VM stopped: {Status}", status);
            return status.ProcessExitCode;
        }

        void Stop(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            vm.RequestStop(new VmExitStatus(VmStopReason.HostRequest, Detail: $"received {ctx.Signal}"));
        }
    }
}
