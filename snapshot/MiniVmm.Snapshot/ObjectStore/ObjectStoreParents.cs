using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>
/// An incremental link's parents in the store: the objects under the same key prefix as the link (its "directory",
/// e.g. <c>vms/ck-</c>… for <c>vms/ck-3.mvs</c> is <c>vms/</c>), as a periodic checkpoint writes them. Each neighbour's
/// header is read once (one range GET of at most 64 KiB) to index it by snapshot id; a matching one is then opened like
/// the tip (every read pinned to its ETag, through the same block cache), and the chain checks its content.
/// </summary>
public sealed class ObjectStoreParents : IParentLocator, IDisposable
{
    /// <summary>Neighbours looked at, at most: a prefix holding more is a store layout this search is not for.</summary>
    public const int MaxNeighbours = 10_000;

    private readonly IObjectStore _store;
    private readonly Func<IObjectStore> _storeForLink;
    private readonly ObjectUri _tip;
    private readonly string _prefix;
    private readonly string? _cacheDirectory;
    private readonly List<ObjectStoreBytes> _opened = [];
    private Dictionary<Guid, List<string>>? _index;

    /// <param name="store">lists and reads headers; owned (disposed with this)</param>
    /// <param name="storeForLink">a store for each parent opened (the parent's bytes own it)</param>
    public ObjectStoreParents(IObjectStore store, Func<IObjectStore> storeForLink, ObjectUri tip, string? cacheDirectory)
    {
        _store = store;
        _storeForLink = storeForLink;
        _tip = tip;
        int slash = tip.Key.LastIndexOf('/');
        _prefix = slash < 0 ? "" : tip.Key[..(slash + 1)];
        _cacheDirectory = cacheDirectory;
    }

    public string Where => $"s3://{_tip.Bucket}/{_prefix}";
    public string Hint => " (a link's parents are looked for under the same key prefix as the link)";

    /// <summary>The parents' bytes opened so far (a failed read of any of them says whether the store was unreachable).</summary>
    public IReadOnlyList<ObjectStoreBytes> Opened => _opened;

    public IReadOnlyList<string> CandidatesFor(Guid snapshotId) =>
        (_index ??= Index()).TryGetValue(snapshotId, out var keys) ? keys : [];

    public SnapshotFile Open(string candidate)
    {
        var uri = new ObjectUri(_tip.Bucket, candidate);
        try
        {
            var bytes = ObjectStoreBytes.Open(_storeForLink(), uri, _cacheDirectory);
            var file = SnapshotFile.Open(bytes, uri.ToString()); // disposes the bytes when it throws
            _opened.Add(bytes);
            return file;
        }
        catch (ObjectStoreException e) when (!e.Unreachable)
        {
            throw new SnapshotFormatException($"{uri}: {e.Message}", e);
        }
    }

    private Dictionary<Guid, List<string>> Index()
    {
        var index = new Dictionary<Guid, List<string>>();
        foreach (string key in ObjectStoreRetry.RunWithin(c => _store.ListAsync(_tip.Bucket, _prefix, MaxNeighbours, c), ObjectStoreBytes.ReadDeadline,
                     $"listing {Where}"))
        {
            // Not snapshots: the tip itself, unfinished uploads' names, working sets.
            if (key == _tip.Key || key.EndsWith(SnapshotFormat.PartialSuffix, StringComparison.Ordinal)
                || key.EndsWith(".ws", StringComparison.Ordinal)) continue;
            string where = $"s3://{_tip.Bucket}/{key}";
            var stat = ObjectStoreRetry.RunWithin(c => _store.StatAsync(_tip.Bucket, key, c), ObjectStoreBytes.ReadDeadline, where);
            if (stat is null || stat.Length < 64) continue; // gone meanwhile, or too short to hold a header
            var head = new byte[(int)Math.Min(stat.Length, SnapshotFormat.HeaderAreaSize)];
            ObjectStoreRetry.RunWithin(c => _store.ReadAsync(_tip.Bucket, key, 0, head, stat.ETag, c), ObjectStoreBytes.ReadDeadline, where);
            if (SnapshotFile.TryReadId(head, stat.Length, where) is { } id)
            {
                if (!index.TryGetValue(id, out var list)) index[id] = list = [];
                list.Add(key);
            }
        }
        return index;
    }

    /// <summary>Disposes the store used for the search (the parents' own stores go with their files).</summary>
    public void Dispose() => _store.Dispose();
}
