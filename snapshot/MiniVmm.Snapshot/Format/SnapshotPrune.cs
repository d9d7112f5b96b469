namespace MiniVmm.Snapshot.Format;

/// <summary>What <see cref="SnapshotPrune.Prune"/> did.</summary>
public sealed record PruneResult(IReadOnlyList<string> MergedInto, IReadOnlyList<string> Relinked, IReadOnlyList<string> Deleted);

/// <summary>
/// Keeps the chains of a directory at most N links long: for each tip whose chain is longer, the oldest links up to
/// the N-th are merged into one full snapshot, the link after them is re-pointed at it, and folded links that no
/// remaining file names as its parent are deleted (a link another chain branches off stays). At every step each
/// remaining tip's chain resolves: the merged base is written and synced before the re-pointed link replaces the old
/// one, and files are deleted only after that.
/// </summary>
public static class SnapshotPrune
{
    /// <summary>A snapshot file of the directory: what it is, what it names as parent, and the side files it owns.</summary>
    private sealed record Entry(string Path, SnapshotParent Identity, SnapshotParent? Parent, IReadOnlyList<string> SideFiles);

    /// <param name="sideFiles">what the snapshots keep beside them (drive captures): merged into the new base, deleted
    /// with the links they belong to (default: none)</param>
    public static PruneResult Prune(string directory, int keep, bool fsync = true, ISnapshotSideFiles? sideFiles = null)
    {
        sideFiles ??= NoSideFiles.Instance;
        if (keep < 1) throw new ArgumentException("keep at least 1 link per chain");
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"'{directory}' does not exist");
        var merged = new List<string>();
        var relinked = new List<string>();
        var deleted = new List<string>();
        // Every snapshot file is opened once; the list is kept current as files are re-pointed, replaced and deleted.
        var entries = Scan(directory, sideFiles);
        foreach (string tip in Tips(entries))
        {
            var links = ChainPaths(tip, directory, out int count);
            if (count <= keep) continue;
            string newBasePath = links[keep - 1];
            string temp = Path.Combine(Path.GetDirectoryName(newBasePath)!, $"{Path.GetFileNameWithoutExtension(newBasePath)}.pruned-{Guid.NewGuid():N}.mvs");
            MergeResult mergeResult;
            using (var sub = SnapshotChain.Open(newBasePath, [directory]))
                mergeResult = SnapshotMerge.Merge(sub, temp, fsync, sideFiles);
            var mergedIdentity = mergeResult.Identity;
            if (keep >= 2)
            {
                using (var child = SnapshotFile.Open(links[keep - 2]))
                    SnapshotRelink.Relink(child, mergedIdentity);
                Replace(entries, links[keep - 2], e => e with { Parent = mergedIdentity });
                relinked.Add(links[keep - 2]);
                entries.Add(new Entry(temp, mergedIdentity, null, mergeResult.SideFiles));
            }
            else
            {
                // keep 1: the tip itself becomes the full snapshot; its own side files (a link's) give way to the merged ones.
                var replaced = entries.FirstOrDefault(e => e.Path == newBasePath)?.SideFiles ?? [];
                File.Move(temp, newBasePath, overwrite: true);
                foreach (string f in replaced.Except(mergeResult.SideFiles)) TryDelete(f);
                Replace(entries, newBasePath, _ => new Entry(newBasePath, mergedIdentity, null, mergeResult.SideFiles));
            }
            // Folded links, newest first: each goes once no remaining file names it (the merged base is the chain's now).
            foreach (string path in links.Skip(keep - 1))
            {
                if (path == newBasePath && keep == 1) continue; // the tip, now full
                if (entries.FirstOrDefault(e => e.Path == path) is not { } entry) continue;
                if (entries.Any(e => e.Path != path && e.Parent == entry.Identity)) continue; // another chain branches off it
                File.Delete(path);
                foreach (string f in entry.SideFiles) TryDelete(f);
                entries.Remove(entry);
                deleted.Add(path);
            }
            // The merged base takes the name of the link it replaces when that name is free (another chain may still
            // branch off that link).
            if (keep >= 2 && !File.Exists(newBasePath))
            {
                File.Move(temp, newBasePath);
                Replace(entries, temp, e => e with { Path = newBasePath });
                merged.Add(newBasePath);
            }
            else merged.Add(keep >= 2 ? temp : newBasePath);
        }
        return new PruneResult(merged, relinked, deleted);
    }

    /// <summary>Every complete snapshot file of the directory (others are skipped), with what it names as parent and its side files.</summary>
    private static List<Entry> Scan(string directory, ISnapshotSideFiles sideFiles)
    {
        var entries = new List<Entry>();
        foreach (string path in Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
        {
            if (path.EndsWith(SnapshotFormat.PartialSuffix, StringComparison.Ordinal) || SnapshotFile.TryReadId(path) is null) continue;
            try
            {
                using var f = SnapshotFile.Open(path);
                entries.Add(new Entry(path, f.Identity, f.Parent, sideFiles.Of(f)));
            }
            catch (Exception e) when (e is SnapshotFormatException or IOException or UnauthorizedAccessException) { }
        }
        return entries;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void Replace(List<Entry> entries, string path, Func<Entry, Entry> change)
    {
        int i = entries.FindIndex(e => e.Path == path);
        if (i >= 0) entries[i] = change(entries[i]);
    }

    /// <summary>Files no other file names as its parent.</summary>
    private static List<string> Tips(List<Entry> entries) =>
        entries.Where(e => !entries.Any(o => o.Parent == e.Identity)).Select(e => e.Path).ToList();

    private static List<string> ChainPaths(string tip, string directory, out int count)
    {
        using var chain = SnapshotChain.Open(tip, [directory]);
        count = chain.Links.Count;
        return chain.Links.Select(l => l.Path).ToList();
    }
}
