using System.Diagnostics;

namespace MiniVmm.Integration.Tests;

/// <summary>Runs the built `minivmm` command (the CLI project's output for the same configuration as the tests).</summary>
public static class MinivmmProcess
{
    private static readonly Lazy<string> Dll = new(() =>
    {
        string baseDir = AppContext.BaseDirectory; // .../tests/MiniVmm.Integration.Tests/bin/<Config>/net10.0/
        string config = new DirectoryInfo(baseDir).Parent!.Name;
        var dir = new DirectoryInfo(baseDir);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MiniVmm.sln"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException("cannot find the repository root from " + baseDir);
        string dll = Path.Combine(dir.FullName, "vmm", "MiniVmm.Cli", "bin", config, "net10.0", "minivmm.dll");
        if (!File.Exists(dll)) throw new InvalidOperationException($"{dll} is missing: build the solution first (make build)");
        return dll;
    });

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>The built minivmm.dll (run with `dotnet`).</summary>
    public static string DllPath => Dll.Value;

    public static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(Dll.Value);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>Starts minivmm through `bash -c` so a test can set up what a shell would (ignored signals, a background job).</summary>
    public static Process StartThroughShell(string shellPrefix, params string[] args)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(shellPrefix + " exec dotnet \"$0\" \"$@\"");
        psi.ArgumentList.Add(Dll.Value);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    public static Result Run(TimeSpan timeout, params string[] args)
    {
        using var p = Start(args);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"minivmm {string.Join(' ', args)} did not exit within {timeout}");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    public static Result Run(params string[] args) => Run(TimeSpan.FromSeconds(90), args);
}
