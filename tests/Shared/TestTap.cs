using System.Diagnostics;

namespace MiniVmm.Tests.Shared;

/// <summary>
/// A throw-away tap interface for one test, created with iproute2 under a unique name, without an address, IPv6 off
/// (no router solicitations or neighbour discovery from the host) and up. Nothing routes to it: the test talks to the
/// guest through it with raw frames only. <see cref="Dispose"/> deletes it (a tap not held open also vanishes with
/// `ip link del`, whoever created it).
/// </summary>
public sealed class TestTap : IDisposable
{
    private static int s_counter;

    public string Name { get; }

    public TestTap()
    {
        Name = $"mvt{Environment.ProcessId % 100000}x{Interlocked.Increment(ref s_counter)}";
        Ip("tuntap", "add", "dev", Name, "mode", "tap");
        try
        {
            File.WriteAllText($"/proc/sys/net/ipv6/conf/{Name}/disable_ipv6", "1");
        }
        catch (IOException) { } // no IPv6 on this host: nothing to silence
        catch (UnauthorizedAccessException) { }
        Ip("link", "set", Name, "up");
    }

    private static void Ip(params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)} failed: {err.Trim()}");
    }

    public void Dispose()
    {
        try { Ip("link", "del", Name); } catch (InvalidOperationException) { }
    }

    /// <summary>Why taps cannot be made here ("" when they can): root (CAP_NET_ADMIN), /dev/net/tun and iproute2.</summary>
    public static string Reason { get; } = Probe();

    private static string Probe()
    {
        if (!File.Exists("/dev/net/tun")) return "/dev/net/tun does not exist";
        if (Environment.UserName != "root") return "root (CAP_NET_ADMIN) to create tap interfaces";
        try { Ip("-V"); } catch (Exception e) { return "iproute2 (`ip`): " + e.Message; }
        return "";
    }
}

/// <summary>A test that creates a tap interface (<see cref="TestTap"/>); skipped with the reason elsewhere, never under CI.</summary>
public sealed class TapFactAttribute : FactAttribute
{
    public TapFactAttribute() => Skip = HostFeature.SkipUnlessPresent("a tap interface", TestTap.Reason);
}
