using System.CommandLine;
using MiniVmm.Cli;

var root = new RootCommand("MiniVmm: a small KVM virtual machine monitor with live snapshots");
root.Subcommands.Add(RunCommand.Create());
//FW
return root.Parse(args).Invoke();
