using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace MiniVmm.Architecture.Tests;

/// <summary>
/// A project graph: project name → the projects it references directly. Read from the fenced <c>project-graph</c>
/// block of docs/ARCHITECTURE.md (lines <c>Project -&gt; A, B</c>; <c>-&gt;</c> alone for none) or from the csproj files.
/// </summary>
internal sealed class ProjectGraph
{
    public const string DocumentPath = "docs/ARCHITECTURE.md";
    private const string Fence = "```project-graph";

    public ProjectGraph(IReadOnlyDictionary<string, IReadOnlySet<string>> edges) => Edges = edges;

    public IReadOnlyDictionary<string, IReadOnlySet<string>> Edges { get; }

    public static ProjectGraph FromDocument(string text)
    {
        int start = text.IndexOf(Fence, StringComparison.Ordinal);
        if (start < 0) throw new FormatException($"{DocumentPath} has no {Fence} block");
        start = text.IndexOf('\n', start) + 1;
        int end = text.IndexOf("```", start, StringComparison.Ordinal);
        if (end < 0) throw new FormatException($"the {Fence} block of {DocumentPath} is not closed");
        var edges = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        foreach (var raw in text[start..end].Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int arrow = line.IndexOf("->", StringComparison.Ordinal);
            if (arrow < 0) throw new FormatException($"'{line}' in {DocumentPath} is not 'Project -> References'");
            string from = line[..arrow].Trim();
            var to = line[(arrow + 2)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (!edges.TryAdd(from, to.ToHashSet(StringComparer.Ordinal)))
                throw new FormatException($"{from} appears twice in {DocumentPath}");
        }
        return new ProjectGraph(edges);
    }

    /// <summary>Every csproj under the repository (build outputs excluded), with its ProjectReferences.</summary>
    public static ProjectGraph FromProjects(string root)
    {
        var edges = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories))
        {
            if (Regex.IsMatch(path, @"[/\\](bin|obj|\.git)[/\\]")) continue;
            var doc = XDocument.Load(path);
            var refs = doc.Descendants("ProjectReference")
                .Select(e => System.IO.Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value.Replace('\\', '/')))
                .ToHashSet(StringComparer.Ordinal);
            edges.Add(System.IO.Path.GetFileNameWithoutExtension(path), refs);
        }
        return new ProjectGraph(edges);
    }

    /// <summary>Assembly name of each project (the csproj's AssemblyName, else the project name).</summary>
    public static IReadOnlyDictionary<string, string> AssemblyNames(string root)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories))
        {
            if (Regex.IsMatch(path, @"[/\\](bin|obj|\.git)[/\\]")) continue;
            string project = System.IO.Path.GetFileNameWithoutExtension(path);
            string? assembly = XDocument.Load(path).Descendants("AssemblyName").Select(e => e.Value.Trim()).FirstOrDefault();
            names[string.IsNullOrEmpty(assembly) ? project : assembly] = project;
        }
        return names;
    }

    /// <summary>A cycle as a list of projects, or null when the graph is acyclic.</summary>
    public IReadOnlyList<string>? FindCycle()
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 = on the path, 2 = done
        var path = new List<string>();
        IReadOnlyList<string>? Visit(string node)
        {
            if (state.GetValueOrDefault(node) == 2) return null;
            if (state.GetValueOrDefault(node) == 1) return path.SkipWhile(n => n != node).Append(node).ToList();
            state[node] = 1;
            path.Add(node);
            foreach (var next in Edges.GetValueOrDefault(node) ?? new HashSet<string>())
                if (Visit(next) is { } cycle) return cycle;
            path.RemoveAt(path.Count - 1);
            state[node] = 2;
            return null;
        }
        foreach (var node in Edges.Keys)
            if (Visit(node) is { } cycle) return cycle;
        return null;
    }
}
