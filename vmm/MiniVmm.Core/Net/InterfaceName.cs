namespace MiniVmm.Core.Net;

/// <summary>
/// The kernel's rule for a network interface name, for the devices layer (which does not see KvmSharp): the one rule
/// is <see cref="KvmSharp.TapDevice.NameProblem"/>, which also guards the tap's open.
/// </summary>
public static class InterfaceName
{
    /// <summary>Why <paramref name="name"/> cannot name a network interface, or null.</summary>
    public static string? Problem(string name) => KvmSharp.TapDevice.NameProblem(name);
}
