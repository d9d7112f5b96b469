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

    public static Option<bool> Paused() => new("--paused")
    {
        Description = "build the VM but do not run it until the monitor's cont (QEMU's -S); needs --qmp",
    };

    public static bool TryGetLevel(string text, out LogLevel level, out string? error)
    {
        error = null;
        if (Logging.TryParseLevel(text, out level)) return true;
        error = $"--log-level: '{text}' is not one of trace, debug, information, warning, error, critical, none";
        return false;
    }

    /// <summary>A problem that is not the command line's (a file that cannot be written): one line, exit 120.</summary>
    public static int Fail(string message)
    {
        Console.Error.WriteLine("minivmm: " + message);
        return ExitCodes.BadInput;
    }

    /// <summary>A bad option value found after parsing: one line, then where help is, exit 120 (as a parse error).</summary>
    public static int Usage(ParseResult parse, string message) => UsageErrors.Report(parse, message);

    /// <summary>One clear line for what went wrong before the guest ran, and a code that says whose problem it is.</summary>
    public static int ReportStartupFailure(ILogger log, Exception e)
    {
        switch (e)
        {
            case VmConfigException or BootImageException:
                Console.Error.WriteLine("minivmm: " + e.Message);
                return ExitCodes.BadInput;
            case LinuxException k: // KVM, or a host call such as userfaultfd: what the host does not offer
                Console.Error.WriteLine("minivmm: " + k.Message);
                return ExitCodes.HostUnsupported;
            default:
                log.LogCritical(e, "failed to start the VM");
                Console.Error.WriteLine("minivmm: internal error: " + e.Message);
                return VmExitStatus.ExitInternalError;
        }
    }
}
