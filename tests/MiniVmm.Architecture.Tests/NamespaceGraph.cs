using System.Reflection;

namespace MiniVmm.Architecture.Tests;

/// <summary>Which namespaces of one assembly use which, with one example type pair per edge.</summary>
internal sealed class NamespaceGraph
{
    private readonly Dictionary<string, Dictionary<string, string>> _edges = new(StringComparer.Ordinal);

    public static NamespaceGraph Of(Assembly assembly)
    {
        var graph = new NamespaceGraph();
        foreach (var type in assembly.GetTypes())
        {
            string? from = type.Namespace;
            if (from is null) continue; // <PrivateImplementationDetails> and the like
            graph._edges.TryAdd(from, new Dictionary<string, string>(StringComparer.Ordinal));
            foreach (var used in TypeReferences.Of(type))
            {
                if (used.Assembly != assembly || used.Namespace is not { } to || to == from || used.IsGenericParameter) continue;
                graph._edges[from].TryAdd(to, $"{type.FullName} uses {used.FullName}");
            }
        }
        return graph;
    }

    public IEnumerable<string> Namespaces => _edges.Keys;

    public IReadOnlyDictionary<string, string> UsedBy(string ns) =>
        _edges.TryGetValue(ns, out var e) ? e : new Dictionary<string, string>();

    /// <summary>Strongly connected groups of more than one namespace (Tarjan), each with the edges inside it.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Cycles()
    {
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var onStack = new HashSet<string>();
        var result = new List<IReadOnlyList<string>>();
        int next = 0;
        void Connect(string v)
        {
            index[v] = low[v] = next++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in UsedBy(v).Keys)
            {
                if (!index.TryGetValue(w, out int wIndex)) { Connect(w); low[v] = Math.Min(low[v], low[w]); }
                else if (onStack.Contains(w)) low[v] = Math.Min(low[v], wIndex);
            }
            if (low[v] != index[v]) return;
            var group = new List<string>();
            string x;
            do { x = stack.Pop(); onStack.Remove(x); group.Add(x); } while (x != v);
            if (group.Count > 1)
            {
                var inside = group.ToHashSet();
                result.Add(group.SelectMany(a => UsedBy(a).Where(e => inside.Contains(e.Key)).Select(e => $"{a} -> {e.Key} ({e.Value})"))
                    .OrderBy(s => s, StringComparer.Ordinal).ToList());
            }
        }
        foreach (var v in _edges.Keys.ToList())
            if (!index.ContainsKey(v)) Connect(v);
        return result;
    }
}
