using System.Runtime.InteropServices;
using KvmSharp;

namespace MiniVmm.Cli;

/// <summary>
/// SIGINT and SIGTERM from the first instruction of main to the exit. Until a command installs its own stop (a VM
/// that stops cleanly, a snapshot client that cancels), the process exits at once with 128 + the signal number, as a
/// shell reports a process killed by it (130, 143) — but without dying by the signal, so no half-written output is
/// left behind by the runtime. Only one stop handler is active at a time: the innermost command's.
/// </summary>
internal static class HostSignals
{
    public const int SIGINT = 2, SIGTERM = 15;
    private static readonly List<PosixSignalRegistration> Registrations = new();
    private static Action<int>? _handler;

    /// <summary>Resets inherited SIG_IGN (a backgrounded job) and registers the process-wide handlers. Call first in main.</summary>
    public static void Install()
    {
        SignalDisposition.ResetIfIgnored(SIGINT);
        SignalDisposition.ResetIfIgnored(SIGTERM);
        Registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => Dispatch(ctx, SIGINT)));
        Registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => Dispatch(ctx, SIGTERM)));
    }

    /// <summary>Routes SIGINT/SIGTERM (the signal number) to <paramref name="handler"/> until the result is disposed.</summary>
    public static IDisposable Handle(Action<int> handler)
    {
        var previous = Interlocked.Exchange(ref _handler, handler);
        return new Restore(handler, previous);
    }

    public static int ExitCodeFor(int signal) => 128 + signal;

    private static void Dispatch(PosixSignalContext ctx, int signal)
    {
        ctx.Cancel = true;
        if (Volatile.Read(ref _handler) is { } handler) handler(signal);
        else
        {
            Console.Error.Flush();
            Environment.Exit(ExitCodeFor(signal));
        }
    }

    private sealed class Restore(Action<int> mine, Action<int>? previous) : IDisposable
    {
        public void Dispose() => Interlocked.CompareExchange(ref _handler, previous, mine);
    }
}
