namespace MiniVmm.Tests.Shared;

/// <summary>The skip rule of every test that needs a host feature: skipped with the reason, never under CI=true.</summary>
public static class HostFeature
{
    /// <summary>The Skip text for a test that needs <paramref name="need"/>, or null when the probe found it (empty reason) or under CI.</summary>
    public static string? SkipUnlessPresent(string need, string probeReason) =>
        probeReason.Length == 0 || KvmAvailability.IsCi ? null
            : $"needs {need}: {probeReason}; set CI=true to make this a failure";
}
