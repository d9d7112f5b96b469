using System.Reflection;

namespace MiniVmm.Architecture.Tests;

/// <summary>
/// Inside each production assembly the namespaces form layers: no group of namespaces uses each other in a circle
/// (types used in signatures and in method bodies both count). A cycle means two folders are really one concern, or a
/// type sits in the wrong one.
/// </summary>
public sealed class NamespaceCycleTests
{
    public static TheoryData<string> LayeredAssemblies() =>
        ["KvmSharp", "MiniVmm.Core", "MiniVmm.Devices", "MiniVmm.Snapshot", "MiniVmm.Machine", "minivmm"];

    [Theory]
    [MemberData(nameof(LayeredAssemblies))]
    public void Namespaces_do_not_form_cycles(string assemblyName)
    {
        var graph = NamespaceGraph.Of(Assembly.Load(new AssemblyName(assemblyName)));
        string.Join("\n", graph.Cycles().Select(c => string.Join("; ", c))).Should().BeEmpty();
    }

    private static readonly string[] FirmwareKnownCycle = ["MiniVmm.Firmware", "MiniVmm.Firmware.Guests.Writer"];

    /// <summary>
    /// The firmware's root namespace is both the catalogue of guests (GuestImages names WriterGuest) and the home of the
    /// guest ABI the writer uses (GuestAbi): a known cycle, accepted because the firmware is test tooling. It must not grow.
    /// </summary>
    [Fact]
    public void The_firmware_has_only_its_known_cycle()
    {
        var graph = NamespaceGraph.Of(typeof(MiniVmm.Firmware.GuestAbi).Assembly);
        graph.Cycles().Select(c => c.Select(e => e.Split(" -> ")[0]).Distinct().Order(StringComparer.Ordinal).ToList())
            .Should().BeEquivalentTo([FirmwareKnownCycle]);
    }

    [Fact]
    public void The_monitor_is_the_top_layer_of_the_machine()
    {
        // QMP/HMP drive the VM; the VM, its snapshots and its state never call back into the monitor.
        var graph = NamespaceGraph.Of(Assembly.Load(new AssemblyName("MiniVmm.Machine")));
        graph.Namespaces.Where(ns => graph.UsedBy(ns).ContainsKey("MiniVmm.Machine.Monitor")).Should().BeEmpty();
    }

    [Fact]
    public void The_scan_sees_references_made_only_in_method_bodies_and_closures()
    {
        var graph = NamespaceGraph.Of(typeof(NamespaceCycleTests).Assembly);
        graph.UsedBy(typeof(Samples.Upper.Caller).Namespace!).Keys.Should().Contain(typeof(Samples.Lower.Callee).Namespace);
        graph.UsedBy(typeof(Samples.Lower.Callee).Namespace!).Keys.Should().NotContain(typeof(Samples.Upper.Caller).Namespace);
        graph.Cycles().Should().ContainSingle().Which.Should().HaveCount(2)
            .And.Contain(e => e.StartsWith(typeof(Samples.CycleA.First).Namespace + " -> ", StringComparison.Ordinal));
    }
}

