using System.Diagnostics;
using System.Text;
using MiniVmm.Machine.Devices;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>The serial console on a terminal: raw as under QEMU -nographic, with the Ctrl-A escape.</summary>
public sealed class RawTerminalTests
{
    [Fact]
    public void The_escape_filter_passes_keys_and_handles_ctrl_a_across_reads()
    {
        int quits = 0;
        var help = new StringBuilder();
        var escape = new SerialEscape(() => quits++, s => help.Append(s));
        var output = new byte[16];
        int n = escape.Filter("a\u0003b\u0001"u8, output);
        Encoding.ASCII.GetString(output, 0, n).Should().Be("a\u0003b", "Ctrl-C is the guest's; a trailing Ctrl-A waits for the next key");
        n = escape.Filter("\u0001c\u0001y"u8, output);
        Encoding.ASCII.GetString(output, 0, n).Should().Be("\u0001c\u0001y", "Ctrl-A Ctrl-A sends one; Ctrl-A y is passed as typed");
        escape.Filter("\u0001h"u8, output).Should().Be(0);
        help.ToString().Should().Contain("C-a x");
        quits.Should().Be(0);
        escape.Filter("z\u0001xq"u8, output).Should().Be(1, "nothing after Ctrl-A x reaches the guest");
        quits.Should().Be(1);
    }

    [KvmFact]
    public void On_a_terminal_input_is_not_echoed_and_ctrl_a_x_stops_the_vm()
    {
        // `script` gives minivmm a pseudo-terminal as its stdin and stdout, as an interactive shell would.
        var psi = new ProcessStartInfo("script") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-qfec", $"dotnet '{MinivmmProcess.DllPath}' run --kernel '{GuestFiles.Writer}' --mem 64 --cmdline 'mb=8 sweeps=0 report_ms=0'", "/dev/null" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var seen = new StringBuilder();
        var banner = new TaskCompletionSource();
        var reader = Task.Run(() =>
        {
            var buffer = new char[256];
            int n;
            while ((n = p.StandardOutput.Read(buffer, 0, buffer.Length)) > 0)
            {
                lock (seen) seen.Append(buffer, 0, n);
                lock (seen) if (seen.ToString().Contains("writer: start", StringComparison.Ordinal)) banner.TrySetResult();
            }
            banner.TrySetResult();
        });
        try
        {
            banner.Task.Wait(TimeSpan.FromSeconds(60)).Should().BeTrue("the guest prints its banner");
            p.StandardInput.Write("zz\u0001x");
            p.StandardInput.Flush();
            p.WaitForExit(30_000).Should().BeTrue("Ctrl-A x stops the VM: " + seen);
            p.ExitCode.Should().Be(0, "QEMU's Ctrl-A x exits 0 too: the user asked to quit");
            reader.Wait(TimeSpan.FromSeconds(10));
            lock (seen) seen.ToString().Should().NotContain("zz", "a raw terminal does not echo; the guest got the keys");
        }
        finally { if (!p.HasExited) p.Kill(entireProcessTree: true); }
    }
}
