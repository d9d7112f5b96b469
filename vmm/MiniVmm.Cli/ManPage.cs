using System.CommandLine;
using System.Text;
using MiniVmm.Machine;

namespace MiniVmm.Cli;

/// <summary>
/// `minivmm man`: the manual page (roff, section 1) generated from the same command tree `--help` prints, so every
/// command and option is in it with the words of its help; `make install` installs it as minivmm.1.
/// </summary>
internal static class ManPage
{
    public static Command Create(RootCommand root)
    {
        var command = new Command("man", "Print the manual page (roff): minivmm man | man -l -");
        command.SetAction(_ =>
        {
            Console.Write(Render(root));
            return ExitCodes.Ok;
        });
        return command;
    }

    public static string Render(RootCommand root)
    {
        var sb = new StringBuilder();
        sb.AppendLine($".TH MINIVMM 1 \"\" \"minivmm {Escape(Version())}\" \"User Commands\"");
        sb.AppendLine(".SH NAME");
        sb.AppendLine("minivmm \\- " + Escape(root.Description ?? "a KVM virtual machine monitor"));
        sb.AppendLine(".SH SYNOPSIS");
        foreach (var c in root.Subcommands.Where(Shown))
            sb.AppendLine($".B minivmm {c.Name}\n[\\fIoptions\\fR]{string.Concat(c.Arguments.Select(a => $" \\fI{Escape(a.Name)}\\fR"))}\n.br");
        sb.AppendLine(".SH COMMANDS");
        foreach (var c in root.Subcommands.Where(Shown)) Describe(sb, c, "minivmm " + c.Name);
        sb.AppendLine(".SH EXIT STATUS");
        foreach (var (code, meaning) in ExitStatuses)
            sb.AppendLine($".TP\n.B {code}\n{Escape(meaning)}");
        sb.AppendLine(".SH SIGNALS");
        sb.AppendLine("SIGINT and SIGTERM stop the VM cleanly (130 / 143). SIGUSR1 takes a snapshot to " +
                      "\\fB\\-\\-snapshot\\-to\\fR; SIGUSR2 cancels the one in progress.");
        sb.AppendLine(".SH SEE ALSO");
        sb.AppendLine("README.md and docs/ of the MiniVmm sources; \\fBqemu-system-x86_64\\fR(1).");
        return sb.ToString();
    }

    private static void Describe(StringBuilder sb, Command command, string path)
    {
        string args = string.Concat(command.Arguments.Select(a => $" {a.Name}"));
        sb.AppendLine($".SS \"{Escape(path + args)}\"");
        if (command.Description is { } d) sb.AppendLine(Escape(d));
        foreach (var option in command.Options.Where(o => !o.Hidden && o.Name is not "--help" and not "--version"))
        {
            // A bool option is a flag (it also takes an explicit true/false, which the help does not show either).
            bool flag = option.Arity.MaximumNumberOfValues == 0 || option.ValueType == typeof(bool);
            string value = flag ? "" : $" \\fI{Escape(ValueName(option))}\\fR";
            sb.AppendLine($".TP\n\\fB{Escape(option.Name)}\\fR{value}");
            sb.AppendLine(Escape(option.Description ?? ""));
        }
        foreach (var sub in command.Subcommands.Where(Shown)) Describe(sb, sub, path + " " + sub.Name);
    }

    private static bool Shown(Command c) => !c.Hidden;

    private static string ValueName(Option option) =>
        option.HelpName ?? option.Name.TrimStart('-').ToUpperInvariant().Replace('-', '_');

    private static readonly (string Code, string Meaning)[] ExitStatuses =
    [
        ("0", "the guest exited with status 0, the monitor's quit, or Ctrl-A x on the console"),
        ("1-119", "the guest's own exit status (the debug-exit port)"),
        ($"{ExitCodes.BadInput}", "bad input: a usage error, a missing or bad kernel, snapshot or config file"),
        ($"{ExitCodes.HostUnsupported}", "the host lacks KVM or userfaultfd support"),
        ($"{VmExitStatus.ExitTripleFault}", "the guest triple-faulted"),
        ($"{VmExitStatus.ExitEmulationFailure}", "KVM could not emulate an instruction or enter the guest"),
        ($"{VmExitStatus.ExitReset}", "the guest asked for a reset"),
        ($"{VmExitStatus.ExitInternalError}", "internal error"),
        ($"{VmExitStatus.ExitSnapshotFailed}", "--exit-after-snapshot and the snapshot failed"),
        ($"{VmExitStatus.ExitStoreUnreachable}", "an s3:// snapshot's object store could not be reached"),
        ("130, 143", "stopped by SIGINT, SIGTERM"),
    ];

    private static string Version() =>
        typeof(ManPage).Assembly.GetName().Version?.ToString(3) ?? "";

    /// <summary>roff text: backslashes and dashes literal, and no line may start with a control character.</summary>
    internal static string Escape(string text)
    {
        string s = text.Replace("\\", "\\e", StringComparison.Ordinal).Replace("-", "\\-", StringComparison.Ordinal)
            .Replace("\n", " ", StringComparison.Ordinal);
        return s.StartsWith('.') || s.StartsWith('\'') ? "\\&" + s : s;
    }
}
