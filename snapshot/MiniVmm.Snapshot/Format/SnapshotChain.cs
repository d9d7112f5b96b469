using System.Globalization;
using System.Text;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// An incremental chain resolved to one image: the tip, its parent, … down to a full snapshot. Each parent is found by
/// content (snapshot id plus trailer checksum) among the snapshot files next to the tip and in the extra directories,
/// never by name; every link is opened and validated like a single snapshot. Each page is served from the newest link
/// that stored it; a page no link stored is zero. A single full snapshot is a chain of one.
/// </summary>
public sealed class SnapshotChain : ISnapshotPages, IDisposable
{
    /// <summary>Longest chain restore follows (the owner of each page is kept in a byte); merge longer chains.</summary>
    public const int MaxLinks = 250;
    private const byte NoOwner = byte.MaxValue;

    private readonly SnapshotFile[] _links;  // [0] = tip … [^1] = the full base
    private readonly byte[][] _owner;        // per region, per page: index into _links, or NoOwner (zero)

    private SnapshotChain(SnapshotFile[] links)
    {
        _links = links;
        var regions = links[0].Regions;
        _owner = new byte[regions.Count][];
        for (int g = 0; g < regions.Count; g++)
        {
            var owner = new byte[regions[g].PageCount];
            Array.Fill(owner, NoOwner);
            long words = (regions[g].PageCount + 63) / 64;
            for (int i = links.Length - 1; i >= 0; i--) // oldest first: newer links overwrite
            {
                for (long w = 0; w < words; w++)
                {
                    ulong bits = links[i].PresentWord(g, w);
                    while (bits != 0)
                    {
                        int b = System.Numerics.BitOperations.TrailingZeroCount(bits);
                        owner[w * 64 + b] = (byte)i;
                        bits &= bits - 1;
                    }
                }
            }
            _owner[g] = owner;
        }
    }

    /// <summary>The links, tip first, base last.</summary>
    public IReadOnlyList<SnapshotFile> Links => _links;
    public SnapshotFile Tip => _links[0];
    public SnapshotFile Base => _links[^1];
    public IReadOnlyList<SnapshotRegion> Regions => Tip.Regions;

    /// <summary>A chain of one full snapshot (one read from an object store, say); an incremental link is refused.</summary>
    public static SnapshotChain Single(SnapshotFile file)
    {
        if (file.Parent is not null)
        {
            file.Dispose();
            throw new SnapshotFormatException($"snapshot '{file.Path}' is an incremental link: only full snapshots are read from here");
        }
        return new SnapshotChain([file]);
    }

    /// <summary>
    /// Opens <paramref name="tipPath"/> and, when it is an incremental link, its ancestors. Parents are looked up among
    /// the files in the tip's directory and in <paramref name="searchDirectories"/>. A missing, replaced, damaged or
    /// mismatching parent, or a cycle, is a <see cref="SnapshotFormatException"/> naming the link and the reason.
    /// </summary>
    public static SnapshotChain Open(string tipPath, IEnumerable<string>? searchDirectories = null)
    {
        var tip = SnapshotFile.Open(tipPath);
        if (tip.Parent is null) return new SnapshotChain([tip]);
        var dirs = new List<string> { Path.GetDirectoryName(Path.GetFullPath(tipPath)) ?? "." };
        if (searchDirectories is not null) dirs.AddRange(searchDirectories);
        DirectoryParents locator;
        try { locator = new DirectoryParents(dirs); }
        catch
        {
            tip.Dispose();
            throw;
        }
        return Resolve(tip, locator);
    }

    /// <summary>
    /// The chain of an already opened <paramref name="tip"/>, its ancestors found through <paramref name="parents"/>
    /// (by content: snapshot id plus trailer checksum). Takes ownership of <paramref name="tip"/>, also when it throws.
    /// </summary>
    public static SnapshotChain Resolve(SnapshotFile tip, IParentLocator parents)
    {
        var links = new List<SnapshotFile> { tip };
        try
        {
            var seen = new HashSet<Guid> { tip.SnapshotId };
            var child = tip;
            while (child.Parent is { } wanted)
            {
                if (links.Count >= MaxLinks)
                    throw new SnapshotFormatException($"snapshot '{tip.Path}' is the tip of a chain of more than {MaxLinks} links: merge it first (minivmm snapshot merge)");
                if (!seen.Add(wanted.SnapshotId))
                    throw new SnapshotFormatException($"the chain of '{tip.Path}' forms a cycle: '{child.Path}' names {wanted.SnapshotId}, which is already in the chain");
                var parent = FindParent(child, wanted, parents);
                links.Add(parent);
                CheckSameMachine(child, parent);
                child = parent;
            }
            return new SnapshotChain([.. links]);
        }
        catch
        {
            foreach (var l in links) l.Dispose();
            throw;
        }
    }

    private static SnapshotFile FindParent(SnapshotFile child, SnapshotParent wanted, IParentLocator parents)
    {
        var candidates = parents.CandidatesFor(wanted.SnapshotId);
        if (candidates.Count == 0)
            throw new SnapshotFormatException($"snapshot '{child.Path}' is an incremental link whose parent {wanted.SnapshotId} is missing: " +
                $"no snapshot in {parents.Where} has that id{parents.Hint}");
        var problems = new List<string>();
        foreach (string name in candidates)
        {
            SnapshotFile candidate;
            // A locator reports an unusable candidate as a SnapshotFormatException; anything else (a store that cannot
            // be reached says nothing about the candidate) is the caller's to report.
            try { candidate = parents.Open(name); }
            catch (SnapshotFormatException e)
            {
                problems.Add(e.Message);
                continue;
            }
            if (candidate.TrailerChecksum == wanted.TrailerChecksum) return candidate;
            problems.Add($"'{name}' has that id but different content (trailer checksum {candidate.TrailerChecksum:x16}, " +
                          $"expected {wanted.TrailerChecksum:x16}): it was replaced or rewritten");
            candidate.Dispose();
        }
        throw new SnapshotFormatException($"snapshot '{child.Path}' is an incremental link whose parent {wanted.SnapshotId} is unusable: " +
                                          string.Join("; ", problems));
    }

    /// <summary>Parents among the snapshot files of local directories (the tip's own first).</summary>
    private sealed class DirectoryParents : IParentLocator
    {
        private readonly Dictionary<Guid, List<string>> _index = new();

        public DirectoryParents(List<string> directories)
        {
            Where = string.Join(", ", directories.Select(d => $"'{d}'"));
            var visited = new HashSet<string>(StringComparer.Ordinal);
            foreach (string dir in directories)
            {
                string full = Path.GetFullPath(dir);
                if (!visited.Add(full)) continue;
                if (!Directory.Exists(full))
                    throw new SnapshotFormatException($"chain directory '{dir}' does not exist");
                foreach (string path in Directory.EnumerateFiles(full))
                {
                    if (path.EndsWith(SnapshotFormat.PartialSuffix, StringComparison.Ordinal)) continue;
                    if (SnapshotFile.TryReadId(path) is { } id)
                    {
                        if (!_index.TryGetValue(id, out var list)) _index[id] = list = [];
                        list.Add(path);
                    }
                }
            }
        }

        public string Where { get; }
        public string Hint => " (pass --chain-dir DIR where the parent is)";
        public IReadOnlyList<string> CandidatesFor(Guid snapshotId) => _index.GetValueOrDefault(snapshotId) ?? [];
        public SnapshotFile Open(string candidate)
        {
            try { return SnapshotFile.Open(candidate); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new SnapshotFormatException(e.Message, e); }
        }
    }

    private static void CheckSameMachine(SnapshotFile child, SnapshotFile parent)
    {
        var a = child.Regions;
        var b = parent.Regions;
        if (a.Count != b.Count || a.Zip(b).Any(p => p.First != p.Second))
            throw new SnapshotFormatException($"snapshot '{child.Path}' and its parent '{parent.Path}' have different memory layouts: they are not one VM's chain");
    }

    /// <summary>Index into <see cref="Links"/> of the link that serves the page, or -1 when it is zero.</summary>
    public int OwnerOf(int region, long page)
    {
        CheckPage(region, page);
        byte o = _owner[region][page];
        return o == NoOwner ? -1 : o;
    }

    public bool IsPresent(int region, long page) => OwnerOf(region, page) >= 0;

    /// <summary>The recorded checksum of the page in the link that serves it (0 for a zero page).</summary>
    public ulong PageChecksum(int region, long page)
    {
        int o = OwnerOf(region, page);
        return o < 0 ? 0 : _links[o].PageChecksum(region, page);
    }

    public void ReadPages(int region, long firstPage, Span<byte> destination, bool verifyChecksum = true)
    {
        if (_links.Length == 1)
        {
            _links[0].ReadPages(region, firstPage, destination, verifyChecksum);
            return;
        }
        if ((uint)region >= (uint)_owner.Length) throw new ArgumentOutOfRangeException(nameof(region));
        if (destination.Length % SnapshotFormat.PageSize != 0)
            throw new ArgumentException($"the destination length is not a multiple of {SnapshotFormat.PageSize}", nameof(destination));
        long count = destination.Length / SnapshotFormat.PageSize;
        var owner = _owner[region];
        if (firstPage < 0 || firstPage > owner.LongLength || count > owner.LongLength - firstPage)
            throw new ArgumentOutOfRangeException(nameof(firstPage), firstPage, $"pages {firstPage}..{firstPage + count} are outside region {region}");
        for (long p = firstPage; p < firstPage + count;)
        {
            byte o = owner[p];
            long end = p + 1;
            while (end < firstPage + count && owner[end] == o) end++;
            var part = destination.Slice((int)((p - firstPage) * SnapshotFormat.PageSize), (int)((end - p) * SnapshotFormat.PageSize));
            if (o == NoOwner) part.Clear();
            else _links[o].ReadPages(region, p, part, verifyChecksum);
            p = end;
        }
    }

    /// <summary>Pages of the region that some link stored, and how many of them the base serves.</summary>
    public (long Present, long FromBase) CountPages(int region)
    {
        long present = 0, fromBase = 0;
        byte baseIndex = (byte)(_links.Length - 1);
        foreach (byte o in _owner[region])
        {
            if (o == NoOwner) continue;
            present++;
            if (o == baseIndex) fromBase++;
        }
        return (present, fromBase);
    }

    /// <summary>One line per link, tip first, for <c>snapshot inspect</c>.</summary>
    public string DescribeLinks()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"  chain       {_links.Length} link(s), tip first:");
        for (int i = 0; i < _links.Length; i++)
        {
            var l = _links[i];
            long stored = Enumerable.Range(0, l.RegionCount).Sum(l.PresentPages);
            sb.AppendLine(inv, $"    [{i}] {l.Path}: {l.SnapshotId}, {(l.IsIncremental ? "incremental" : "full")}, {stored} pages stored");
        }
        return sb.ToString();
    }

    private void CheckPage(int region, long page)
    {
        if ((uint)region >= (uint)_owner.Length) throw new ArgumentOutOfRangeException(nameof(region));
        if ((ulong)page >= (ulong)_owner[region].LongLength) throw new ArgumentOutOfRangeException(nameof(page));
    }

    public void Dispose()
    {
        foreach (var l in _links) l.Dispose();
    }
}
