using KvmSharp;
using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// Re-points an incremental link at a new parent with the same content (a merge of its old ancestors): the body is
/// copied as it is (holes stay holes) and only the header's parent field changes. The trailer does not cover the
/// header, so the link keeps its identity (id and trailer checksum) and its own children still find it. Written aside,
/// synced and renamed over the link, so a crash leaves either the old or the new file.
/// </summary>
internal static class SnapshotRelink
{
    private const int CopyChunk = 1 << 20;

    public static void Relink(SnapshotFile link, SnapshotParent newParent)
    {
        if (!link.IsIncremental) throw new ArgumentException($"'{link.Path}' is a full snapshot: it has no parent to replace");
        string temp = link.Path + SnapshotFormat.PartialSuffix;
        var header = link.Header with { Info = link.Info with { Parent = newParent } };
        try
        {
            using (var output = File.OpenHandle(temp, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
            {
                RandomAccess.SetLength(output, link.FileLength);
                // Page data: only present pages (the rest are holes in both files).
                var buffer = new byte[CopyChunk];
                for (int g = 0; g < link.RegionCount; g++)
                {
                    long pages = link.Regions[g].PageCount;
                    long area = link.RegionDataOffset(g);
                    for (long p = 0; p < pages;)
                    {
                        if (!link.IsPresent(g, p)) { p++; continue; }
                        long end = p + 1;
                        while (end < pages && end - p < CopyChunk / SnapshotFormat.PageSize && link.IsPresent(g, end)) end++;
                        long offset = area + p * SnapshotFormat.PageSize;
                        Copy(link, output, buffer, offset, (end - p) * SnapshotFormat.PageSize);
                        p = end;
                    }
                }
                // State, padding, trailer and completion marker as they are.
                long stateOffset = link.Header.StateOffset;
                for (long at = stateOffset; at < link.FileLength; at += CopyChunk)
                    Copy(link, output, buffer, at, Math.Min(CopyChunk, link.FileLength - at));
                RandomAccess.Write(output, header.Encode(), 0);
                RandomAccess.FlushToDisk(output);
            }
            // Check the copy before it replaces anything: same identity, new parent.
            using (var check = SnapshotFile.Open(temp, allowPartialName: true))
            {
                if (check.Identity != link.Identity || check.Parent != newParent)
                    throw new SnapshotFormatException($"re-pointing '{link.Path}' produced a file of another identity; nothing was replaced");
            }
            File.Move(temp, link.Path, overwrite: true);
            HostIo.TryFlushDirectory(Path.GetDirectoryName(Path.GetFullPath(link.Path)) ?? "/");
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static void Copy(SnapshotFile from, SafeFileHandle to, byte[] buffer, long offset, long length)
    {
        for (long done = 0; done < length;)
        {
            int n = (int)Math.Min(buffer.Length, length - done);
            from.ReadRaw(buffer.AsSpan(0, n), offset + done);
            RandomAccess.Write(to, buffer.AsSpan(0, n), offset + done);
            done += n;
        }
    }
}
