using System.Security.Cryptography;
using System.Text;

namespace MiniVmm.Snapshot.ObjectStore;

/// <summary>
/// A local read-through cache of an object's 2 MiB blocks (<c>restore --cache-dir DIR</c>), shared by every clone
/// restored on the host: block <c>i</c> of one version of one object is the file <c>DIR/HASH/i</c>, where HASH is the
/// hex SHA-256 of the bucket, key, ETag and length, so a replaced object never meets its predecessor's blocks. A
/// block is written under a temporary name and renamed into place, so a concurrent reader sees it whole or not at all.
/// The cache is only a shortcut: a file of the wrong length is a miss, an I/O error while reading or storing is a
/// miss, and what comes out of a hit is still checked by the format layer (page checksums, header, trailer).
/// </summary>
public sealed class BlockCacheDirectory
{
    private readonly string _directory;

    /// <summary>Creates <c>DIR/HASH</c> if needed; a directory that cannot be made is the caller's error (thrown).</summary>
    public BlockCacheDirectory(string root, ObjectUri uri, ObjectStat stat)
    {
        _directory = Path.Combine(root, KeyOf(uri, stat));
        Directory.CreateDirectory(_directory);
    }

    /// <summary>The directory holding this object version's blocks.</summary>
    public string Location => _directory;

    /// <summary>Each part length-prefixed: no choice of key and ETag can make two versions' strings equal.</summary>
    public static string KeyOf(ObjectUri uri, ObjectStat stat)
    {
        string identity = $"{uri.Bucket.Length}:{uri.Bucket}/{uri.Key.Length}:{uri.Key}/{stat.ETag.Length}:{stat.ETag}/{stat.Length}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)));
    }

    /// <summary>Fills <paramref name="destination"/> with the cached block; false (a miss) unless it is there whole.</summary>
    public bool TryRead(long block, Span<byte> destination)
    {
        try
        {
            using var handle = File.OpenHandle(PathOf(block), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (RandomAccess.GetLength(handle) != destination.Length) return false;
            int done = 0;
            while (done < destination.Length)
            {
                int n = RandomAccess.Read(handle, destination[done..], done);
                if (n == 0) return false;
                done += n;
            }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>Stores a fetched block (best effort: a full disk or a read-only directory only costs the next reader a fetch).</summary>
    public void Store(long block, ReadOnlySpan<byte> data)
    {
        string temp = Path.Combine(_directory, $".{block}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                RandomAccess.Write(handle, data, 0);
            File.Move(temp, PathOf(block), overwrite: true); // rename(2): atomic, the last writer's identical copy wins
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (Exception d) when (d is IOException or UnauthorizedAccessException) { }
        }
    }

    private string PathOf(long block) => Path.Combine(_directory, block.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
