using System.CommandLine;
using System.Text.Json.Nodes;

using MiniVmm.Qmp;

namespace MiniVmm.Cli;

/// <summary>
/// `minivmm monitor --qmp PATH`: an interactive session on a VM's QMP socket. A line starting with '{' is sent as QMP
/// JSON and the reply printed; any other line is an HMP command (human-monitor-command) whose text is printed.
/// Events are printed as they arrive. Works with QEMU's QMP sockets too.
/// </summary>
internal static class MonitorCommand
{
    private const string Prompt = "(minivmm) ";

    public static Command Create()
    {
        var qmp = new Option<string>("--qmp") { Description = "QMP socket (unix:PATH or PATH)", Required = true };
        var command = new Command("monitor", "Interactive QMP/HMP session with a running VM") { qmp };
        command.SetAction(parse =>
        {
            if (!QmpClient.TryOpen(parse.GetValue(qmp)!, out var client, out string path, out string? error))
                return CommonOptions.Fail(error);
            using (client)
            {
                bool prompt = !Console.IsInputRedirected;
                var output = new object();
                bool atPrompt = false;
                // An event that arrives while the prompt waits goes on its own line, and the prompt is drawn again.
                client.EventReceived += e =>
                {
                    lock (output)
                    {
                        Console.WriteLine((atPrompt ? "\r" : "") + e.ToJsonString() + (atPrompt ? "\u001b[K" : ""));
                        if (atPrompt) Console.Write(Prompt);
                    }
                };
                Console.WriteLine($"connected to {client.Greeting["QMP"]?["version"]?["package"]} at {path}; HMP commands or QMP JSON, 'help', Ctrl-D to leave");
                while (true)
                {
                    if (prompt) lock (output) { Console.Write(Prompt); atPrompt = true; }
                    string? line = Console.ReadLine();
                    lock (output) atPrompt = false;
                    if (line is null)
                    {
                        if (prompt) Console.WriteLine(); // Ctrl-D: end the prompt's line
                        return ExitCodes.Ok;
                    }
                    line = line.Trim();
                    if (line.Length == 0) continue;
                    try
                    {
                        if (line.StartsWith('{')) Console.WriteLine(client.ExecuteRaw(line, TimeSpan.FromSeconds(60)).ToJsonString());
                        else Console.Write(client.Execute("human-monitor-command", new JsonObject { ["command-line"] = line })?.GetValue<string>());
                    }
                    catch (QmpCommandException e) { Console.WriteLine($"error ({e.ErrorClass}): {e.Message}"); }
                    catch (IOException e)
                    {
                        Console.Error.WriteLine("minivmm: monitor: " + e.Message);
                        return 1;
                    }
                }
            }
        });
        return command;
    }
}
