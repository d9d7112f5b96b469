using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>
/// Process signal dispositions the .NET runtime leaves alone. A shell starts a background job (`cmd &amp;` in a script)
/// with SIGINT and SIGQUIT set to SIG_IGN, and the runtime then never installs its handler for them, so
/// <c>PosixSignalRegistration</c> would never fire. A VMM should stop cleanly on `kill -INT` wherever it was started.
/// </summary>
public static unsafe class SignalDisposition
{
    private const nint SIG_DFL = 0, SIG_IGN = 1;

    /// <summary>Sets <paramref name="signal"/> back to its default action if it was inherited as ignored. True if it was.</summary>
    public static bool ResetIfIgnored(int signal)
    {
        sigaction_t current;
        if (Libc.sigaction(signal, null, &current) != 0 || current.sa_handler != SIG_IGN) return false;
        var dfl = new sigaction_t { sa_handler = SIG_DFL };
        return Libc.sigaction(signal, &dfl, null) == 0;
    }
}
