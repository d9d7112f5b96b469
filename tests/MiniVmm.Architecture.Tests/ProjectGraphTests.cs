using System.Reflection;

namespace MiniVmm.Architecture.Tests;

/// <summary>
/// The project graph drawn in docs/ARCHITECTURE.md is the law: the csproj files must declare exactly it, and no compiled
/// assembly may reference a project outside it (Directory.Build.props disables transitive project references, so a
/// project cannot use what it does not reference itself).
/// </summary>
public sealed class ProjectGraphTests
{
    private static readonly ProjectGraph Documented =
        ProjectGraph.FromDocument(File.ReadAllText(Repository.PathOf(ProjectGraph.DocumentPath)));

    public static TheoryData<string> ProductionProjects()
    {
        var data = new TheoryData<string>();
        foreach (var p in Documented.Edges.Keys.Where(p => !p.EndsWith(".Tests", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            data.Add(p);
        return data;
    }

    [Fact]
    public void The_csproj_files_declare_exactly_the_documented_graph()
    {
        var declared = ProjectGraph.FromProjects(Repository.Root);
        var problems = new List<string>();
        foreach (var p in declared.Edges.Keys.Except(Documented.Edges.Keys)) problems.Add($"{p} is not in {ProjectGraph.DocumentPath}");
        foreach (var p in Documented.Edges.Keys.Except(declared.Edges.Keys)) problems.Add($"{p} is documented but has no csproj");
        foreach (var (project, refs) in declared.Edges)
        {
            if (!Documented.Edges.TryGetValue(project, out var allowed)) continue;
            foreach (var r in refs.Except(allowed)) problems.Add($"{project} references {r}, which the documented graph does not show");
            foreach (var r in allowed.Except(refs)) problems.Add($"the documented graph shows {project} -> {r}, which its csproj lacks");
        }
        string.Join("\n", problems).Should().BeEmpty();
    }

    [Fact]
    public void The_documented_graph_has_no_cycle() => Documented.FindCycle().Should().BeNull();

    [Fact]
    public void Only_the_cli_and_tests_reference_the_firmware()
    {
        Documented.Edges.Where(e => e.Value.Contains("MiniVmm.Firmware"))
            .Select(e => e.Key).Where(p => !p.EndsWith(".Tests", StringComparison.Ordinal))
            .Should().BeEquivalentTo(["MiniVmm.Cli"]);
    }

    [Fact]
    public void The_qmp_protocol_depends_on_nothing_of_the_vm() =>
        Documented.Edges["MiniVmm.Qmp"].Should().BeEmpty("the server, the CLI's client and the tests share the protocol; the VM is not part of it");

    [Fact]
    public void Devices_do_not_reference_kvm_bindings() =>
        Documented.Edges["MiniVmm.Devices"].Should().NotContain("KvmSharp");

    [Fact]
    public void Only_the_kernel_bindings_and_core_may_compile_unsafe_code()
    {
        // Raw addresses live in KvmSharp and Core's guest-memory layer; everything else uses spans and owning types.
        var unsafeProjects = Directory.EnumerateFiles(Repository.Root, "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains("/bin/", StringComparison.Ordinal) && !p.Contains("/obj/", StringComparison.Ordinal))
            .Where(p => System.Xml.Linq.XDocument.Load(p).Descendants("AllowUnsafeBlocks").Any(e => e.Value.Trim() == "true"))
            .Select(System.IO.Path.GetFileNameWithoutExtension);
        unsafeProjects.Should().BeEquivalentTo(["KvmSharp", "MiniVmm.Core"]);
    }

    [Theory]
    [MemberData(nameof(ProductionProjects))]
    public void The_compiled_assembly_references_only_documented_projects(string project)
    {
        var assemblyToProject = ProjectGraph.AssemblyNames(Repository.Root);
        string assemblyName = assemblyToProject.Single(kv => kv.Value == project).Key;
        var assembly = Assembly.Load(new AssemblyName(assemblyName));
        var used = assembly.GetReferencedAssemblies()
            .Select(a => assemblyToProject.GetValueOrDefault(a.Name!))
            .OfType<string>()
            .ToList();
        used.Should().BeSubsetOf(Documented.Edges[project],
            $"{project}'s compiled references must stay inside the graph in {ProjectGraph.DocumentPath}");
    }
}
