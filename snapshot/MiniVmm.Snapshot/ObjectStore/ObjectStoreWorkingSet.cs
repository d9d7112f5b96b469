using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Restore;

namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>
/// A snapshot object's working set (<c>KEY.ws</c>, the bytes of <see cref="WorkingSetFile"/>) beside it in the store: a
/// lazy restore that recorded the pages its guest touched first leaves it there, and later restores on any host
/// prefetch those pages before the rest.
/// </summary>
public static class ObjectStoreWorkingSet
{
    public static ObjectUri For(ObjectUri snapshot) => snapshot with { Key = snapshot.Key + ".ws" };

    /// <summary>The working set stored beside <paramref name="snapshot"/>, or null when there is none.</summary>
    /// <exception cref="ObjectStoreException">The store failed, or did not answer within the read deadline (unreachable).</exception>
    /// <exception cref="SnapshotFormatException">The object is not a valid working-set file for this RAM.</exception>
    public static IReadOnlyList<ulong>? TryRead(IObjectStore store, ObjectUri snapshot, ulong maxPage)
    {
        var ws = For(snapshot);
        var stat = ObjectStoreRetry.RunWithin(c => store.StatAsync(ws.Bucket, ws.Key, c), ObjectStoreBytes.ReadDeadline, ws.ToString());
        if (stat is null) return null;
        if (stat.Length < 32 || stat.Length > WorkingSetFile.MaxBytes)
            throw new SnapshotFormatException($"working-set object {ws} has an impossible size ({stat.Length} bytes)");
        var data = new byte[stat.Length];
        ObjectStoreRetry.RunWithin(c => store.ReadAsync(ws.Bucket, ws.Key, 0, data, stat.ETag, c), ObjectStoreBytes.ReadDeadline, ws.ToString());
        return WorkingSetFile.Decode(data, maxPage, ws.ToString());
    }

    /// <summary>Stores <paramref name="pages"/> as the working set of <paramref name="snapshot"/> (replacing an older one).</summary>
    public static void Write(IObjectStore store, ObjectUri snapshot, IReadOnlyList<ulong> pages)
    {
        var ws = For(snapshot);
        var data = WorkingSetFile.Encode(pages);
        ObjectStoreRetry.RunWithin(c => store.PutAsync(ws.Bucket, ws.Key, data, c), ObjectStoreBytes.ReadDeadline, ws.ToString());
    }
}
