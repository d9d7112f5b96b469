namespace MiniVmm.Snapshot.Format;

/// <summary>What <see cref="SnapshotMerge.Merge"/> wrote.</summary>
public sealed record MergeResult(string Path, SnapshotParent Identity, int LinksMerged, long PagesStored, long BytesWritten)
{
    /// <summary>The side files written with the merged snapshot (its drive captures).</summary>
    public IReadOnlyList<string> SideFiles { get; init; } = [];

    public Guid SnapshotId => Identity.SnapshotId;
}

/// <summary>
/// Squashes an incremental chain into one full snapshot: the tip's state and VM config, every page from the newest link
/// that has it (zero pages become holes), and the side files (drive captures) merged the same way. Written aside and renamed into place (an interrupted merge leaves nothing), then
/// verified: the output is re-opened and each page's recorded checksum compared with the chain's.
/// </summary>
public static class SnapshotMerge
{
    private const int BatchPages = 512;

    /// <param name="sideFiles">what the snapshots keep beside them (drive captures): merged too (default: none)</param>
    public static MergeResult Merge(SnapshotChain chain, string outputPath, bool fsync = true, ISnapshotSideFiles? sideFiles = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        string full = System.IO.Path.GetFullPath(outputPath);
        if (chain.Links.Any(l => System.IO.Path.GetFullPath(l.Path) == full))
            throw new ArgumentException($"'{outputPath}' is a link of the chain being merged: write the merged snapshot elsewhere");
        var tip = chain.Tip;
        var info = tip.Info with { Parent = null };
        long pages = 0;
        var buffer = new byte[BatchPages * SnapshotFormat.PageSize];
        var sink = SnapshotFileSink.Create(outputPath, info, fsync, tip.CreatedAt);
        IReadOnlyList<string> written = [];
        try
        {
            for (int g = 0; g < chain.Regions.Count; g++)
            {
                long count = chain.Regions[g].PageCount;
                for (long first = 0; first < count; first += BatchPages)
                {
                    int n = (int)Math.Min(BatchPages, count - first);
                    bool any = false;
                    for (long p = first; p < first + n && !any; p++) any = chain.IsPresent(g, p);
                    if (!any) continue;
                    var span = buffer.AsSpan(0, n * SnapshotFormat.PageSize);
                    chain.ReadPages(g, first, span, verifyChecksum: true);
                    sink.WritePages(g, first, span);
                }
            }
            var (sections, files) = (sideFiles ?? NoSideFiles.Instance).Merge(chain, outputPath, fsync);
            written = files;
            sink.Complete(sections);
            pages = sink.PagesWritten;
        }
        catch
        {
            sink.Abort();
            foreach (string f in written) TryDelete(f);
            throw;
        }
        finally
        {
            sink.Dispose();
        }
        SnapshotParent identity;
        try { identity = VerifyAgainst(chain, outputPath); }
        catch
        {
            foreach (string f in written) TryDelete(f);
            throw;
        }
        return new MergeResult(outputPath, identity, chain.Links.Count, pages, sink.BytesWritten) { SideFiles = written };
    }

    /// <summary>Re-opens the merged file: every page must be present with the chain's checksum, or zero in both.</summary>
    private static SnapshotParent VerifyAgainst(SnapshotChain chain, string path)
    {
        using var merged = SnapshotFile.Open(path);
        for (int g = 0; g < chain.Regions.Count; g++)
        {
            for (long p = 0; p < chain.Regions[g].PageCount; p++)
            {
                ulong want = chain.PageChecksum(g, p);
                bool wantZero = want == 0 || want == PageBatch.ZeroPageChecksum;
                bool ok = wantZero ? !merged.IsPresent(g, p) : merged.IsPresent(g, p) && merged.PageChecksum(g, p) == want;
                if (!ok)
                {
                    merged.Dispose();
                    TryDelete(path);
                    throw new SnapshotFormatException($"the merged snapshot '{path}' does not match its chain at page {p} of region {g}; it was removed");
                }
            }
        }
        return merged.Identity;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
