using System.CommandLine;
using MiniVmm.Cli;

var root = new RootCommand("MiniVmm: a small KVM virtual machine monitor with live snapshots");
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(RestoreCommand.Create());
root.Subcommands.Add(SnapshotCommand.Create());
root.Subcommands.Add(MonitorCommand.Create());
root.Subcommands.Add(FirmwareCommand.Create());
return root.Parse(args).Invoke();
