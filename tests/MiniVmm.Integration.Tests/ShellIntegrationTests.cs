using System.Diagnostics;
using System.Text.RegularExpressions;

namespace MiniVmm.Integration.Tests;

/// <summary>`minivmm completion bash` completes in a real bash; `minivmm man` documents every option `--help` lists.</summary>
public sealed partial class ShellIntegrationTests
{
    private static readonly string[][] Commands =
    [
        ["run"], ["restore"], ["snapshot"], ["snapshot", "inspect"], ["snapshot", "verify"], ["snapshot", "convert"],
        ["snapshot", "merge"], ["snapshot", "prune"], ["monitor"], ["firmware"], ["completion"],
    ];

    [Fact]
    public void The_man_page_has_every_command_and_every_option_of_its_help()
    {
        var man = MinivmmProcess.Run("man");
        man.ExitCode.Should().Be(0, man.Stderr);
        man.Stdout.Should().StartWith(".TH MINIVMM 1");
        foreach (var command in Commands)
        {
            var help = MinivmmProcess.Run([.. command, "--help"]);
            help.ExitCode.Should().Be(0, help.Stderr);
            man.Stdout.Should().Contain($".SS \"minivmm {string.Join(' ', command)}", "every command has its own section");
            var options = OptionInHelp().Matches(help.Stdout).Select(m => m.Groups[1].Value).Where(o => o != "--help").ToList();
            // (convert and completion take arguments only; the others' option lists must have been found)
            if (command[^1] is not ("completion" or "convert")) options.Should().NotBeEmpty(help.Stdout);
            foreach (string option in options)
                man.Stdout.Should().Contain($"\\fB{option.Replace("-", "\\-")}\\fR", $"'{string.Join(' ', command)} {option}' is in --help");
        }
        man.Stdout.Split('\n').Should().NotContain(l => l.StartsWith('.') && l.Length > 1 && !ManRequest().IsMatch(l),
            "only the man macros this page means to use start a line (an option text starting with '.' would be a request)");
    }

    [Theory]
    [InlineData("minivmm res", "restore")]
    [InlineData("minivmm run --snapshot-m", "--snapshot-mode")]
    [InlineData("minivmm restore --memory ", "eager lazy mmap")]
    [InlineData("minivmm run --log-level d", "debug")]
    [InlineData("minivmm snapshot ver", "verify")]
    public void Bash_completes_commands_options_and_their_values(string line, string expected)
    {
        Complete(line).Should().Be(expected);
    }

    [Fact]
    public void Bash_completes_a_file_name_where_the_parser_has_no_suggestion()
    {
        string dir = GuestFiles.TempPath("complete-dir");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "kernel-image.elf"), "");
        try { Complete($"minivmm run --kernel {dir}/kern").Should().Be($"{dir}/kernel-image.elf"); }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Completion_for_an_unknown_shell_is_a_usage_error()
    {
        var r = MinivmmProcess.Run("completion", "tcsh");
        r.ExitCode.Should().Be(120);
        r.Stderr.Should().Contain("'tcsh' is not a supported shell");
    }

    /// <summary>Sources the script in bash with `minivmm` on PATH (a wrapper running the built dll) and completes LINE.</summary>
    private static string Complete(string line)
    {
        string bin = GuestFiles.TempPath("complete-bin");
        Directory.CreateDirectory(bin);
        string wrapper = Path.Combine(bin, "minivmm");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec dotnet '{MinivmmProcess.DllPath}' \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.Environment["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH");
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("""
                eval "$(minivmm completion bash)" || exit 3
                COMP_LINE="$1"; COMP_POINT=${#1}
                read -ra COMP_WORDS <<< "$1"; [[ "$1" == *" " ]] && COMP_WORDS+=("")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                _minivmm
                echo "${COMPREPLY[*]}"
                """);
            psi.ArgumentList.Add("bash");
            psi.ArgumentList.Add(line);
            using var p = Process.Start(psi)!;
            string stdout = p.StandardOutput.ReadToEnd();
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit(60_000).Should().BeTrue();
            p.ExitCode.Should().Be(0, stderr);
            return string.Join(' ', stdout.Trim().Split(' ').Order(StringComparer.Ordinal));
        }
        finally { Directory.Delete(bin, recursive: true); }
    }

    [GeneratedRegex(@"^\s+(?:-\S+, )*(--[a-z][a-z0-9-]*)", RegexOptions.Multiline)]
    private static partial Regex OptionInHelp();

    [GeneratedRegex(@"^\.(TH|SH|SS|TP|B|br)( |$)")]
    private static partial Regex ManRequest();
}
