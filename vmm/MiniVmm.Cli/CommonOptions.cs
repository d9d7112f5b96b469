using System.CommandLine;
using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Boot;
using MiniVmm.Machine;

namespace MiniVmm.Cli;

internal static class CommonOptions
{
    public static Option<string> LogLevel() => new("--log-level")
    {
        Description = "trace | debug | information | warning | error | critical | none",
        DefaultValueFactory = _ => "warning",
    };

    public static bool TryGetLevel(string text, out LogLevel level)
    {
        if (Logging.TryParseLevel(text, out level)) return true;
        Fail($"--log-level: '{text}' is not one of trace, debug, information, warning, error, critical, none");
        return false;
    }

    public static int Fail(string message)
    {
        Console.Error.WriteLine("minivmm: " + message);
        return ExitCodes.BadInput;
    }

    /// <summary>One clear line for what went wrong before the guest ran, and a code that says whose problem it is.</summary>
    public static int ReportStartupFailure(ILogger log, Exception e)
    {
        switch (e)
        {
            case VmConfigException or BootImageException:
                Console.Error.WriteLine("minivmm: " + e.Message);
                return ExitCodes.BadInput;
            case KvmException k:
                Console.Error.WriteLine("minivmm: " + k.Message);
                return ExitCodes.HostUnsupported;
            default:
                log.LogCritical(e, "failed to start the VM");
                Console.Error.WriteLine("minivmm: internal error: " + e.Message);
                return VmExitStatus.ExitInternalError;
        }
    }
}
