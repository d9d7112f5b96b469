using System.CommandLine;
using System.CommandLine.Invocation;
using MiniVmm.Cli;
using MiniVmm.Machine;

// Signals first: a SIGINT while the runtime, the parser or the VM start up still ends the process with 130.
HostSignals.Install();
var root = new RootCommand("MiniVmm: a small KVM virtual machine monitor with live snapshots");
var run = RunCommand.Create();
root.Subcommands.Add(run);
root.Subcommands.Add(RestoreCommand.Create());
root.Subcommands.Add(SnapshotCommand.Create());
root.Subcommands.Add(MonitorCommand.Create());
root.Subcommands.Add(FirmwareCommand.Create());
root.Subcommands.Add(CompletionCommand.Create());
root.Subcommands.Add(ManPage.Create(root));
OptionChoices.AddTo(root);
try
{
    var parse = root.Parse(args);
    // run --config FILE: the file's settings become options (the command line's win), then everything is parsed as typed.
    if (!ConfigFile.TryExpand(run, parse, args, out string[] expanded, out string? configError)) return UsageErrors.Report(parse, configError);
    if (expanded != args) parse = root.Parse(expanded);
    if (parse.Action is ParseErrorAction) return UsageErrors.Report(parse);
    return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
}
catch (Exception e)
{
    Console.Error.WriteLine($"minivmm: internal error: {e.Message}");
    return VmExitStatus.ExitInternalError;
}
