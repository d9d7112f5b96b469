using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Machine.State;

namespace MiniVmm.Machine.Snapshots;

/// <summary>What restore does with a drive whose content the snapshot captured.</summary>
public enum DriveRestoreMode
{
    /// <summary>Use the drive as it is if it still holds the captured content; refuse it when it changed (default).</summary>
    Check,
    /// <summary>Write the snapshot's copy into the drive first (verified against its checksum), whatever the drive holds.</summary>
    FromSnapshot,
}

/// <summary>
/// Pairs a restored VM's drives with the content its snapshot captured, before the VM opens them: a drive that no
/// longer holds that content would give the guest a disk from another instant than its RAM (its file system cache and
/// the disk disagree), so it is refused unless the snapshot's copy is to be written back.
/// </summary>
internal static class DriveRestore
{
    /// <summary>
    /// Checks (or, with <see cref="DriveRestoreMode.FromSnapshot"/>, writes back) every drive the chain's tip captured.
    /// <paramref name="links"/> are the chain's snapshots with their drive records, tip first; a drive's content at the
    /// tip's freeze is resolved from their captures. Returns, per drive slot, each block's hash as the drive now holds
    /// it (the tip's content): an incremental link of the restored VM copies only what the guest writes after this.
    /// </summary>
    public static IReadOnlyDictionary<int, ulong[]> Apply(IReadOnlyList<(string SnapshotPath, IReadOnlyList<DriveRecord> Records)> links,
        IReadOnlyList<DriveSpec> drives, DriveRestoreMode mode, ILogger log)
    {
        var hashes = new Dictionary<int, ulong[]>();
        if (links.Count == 0) return hashes;
        string directory = Path.GetDirectoryName(Path.GetFullPath(links[0].SnapshotPath))!;
        foreach (var record in links[0].Records)
        {
            if (record.Slot >= drives.Count)
                throw new StateRestoreException($"the snapshot captured drive {record.Slot}, but records only {drives.Count} drive(s)");
            var drive = drives[record.Slot];
            if (drive.ReadOnly) throw new StateRestoreException($"the snapshot captured drive {record.Slot} ('{drive.Path}'), which it records as read-only");
            string copy = Path.Combine(directory, record.File);
            if (mode == DriveRestoreMode.FromSnapshot)
            {
                using var image = DriveChainImage.Open(links, record.Slot);
                hashes[record.Slot] = WriteBack(image, drive.Path);
                log.LogInformation("drive {Slot}: restored the snapshot's copy {Copy} into {Path}", record.Slot,
                    string.Join(" + ", image.Files), drive.Path);
                continue;
            }
            ulong[] found;
            try
            {
                using var handle = File.OpenHandle(drive.Path, FileMode.Open, FileAccess.Read, FileShare.Read);
                long length = RandomAccess.GetLength(handle);
                if (length != record.Length)
                    throw new StateRestoreException($"drive {record.Slot} ('{drive.Path}') is {length} bytes; the snapshot captured {record.Length}. {Hint(copy)}");
                found = DriveChecksum.BlockHashes(handle, length, record.BlockSize);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StateRestoreException($"cannot check drive {record.Slot} ('{drive.Path}') against the snapshot: {e.Message}. {Hint(copy)}", e);
            }
            if (DriveChecksum.Combine(found) != record.Checksum)
                throw new StateRestoreException($"drive {record.Slot} ('{drive.Path}') changed since the snapshot: it no longer holds the content captured at the freeze. {Hint(copy)}");
            hashes[record.Slot] = found;
            log.LogDebug("drive {Slot}: {Path} holds the content the snapshot captured", record.Slot, drive.Path);
        }
        return hashes;
    }

    private static string Hint(string copy) =>
        $"Pass --drive-from-snapshot to write the snapshot's copy ('{copy}') into it, or --drive FILE to restore onto another image";

    /// <summary>
    /// Writes the chain's content of the drive into it, verified against the tip's checksum: a regular file is replaced
    /// atomically (a sparse copy written aside, synced and renamed over it, so a mismatch leaves the drive untouched);
    /// anything else (a block device) is verified in a first pass and then written in place.
    /// </summary>
    private static ulong[] WriteBack(DriveChainImage image, string drivePath)
    {
        string target = drivePath;
        try
        {
            bool regular = !File.Exists(drivePath) || FileKinds.Of(drivePath) == FileKind.Regular;
            if (!regular) image.CopyTo(null, sparse: false);
            target = regular ? drivePath + ".restoring" : drivePath;
            ulong[] hashes;
            using (var output = File.OpenHandle(target, regular ? FileMode.Create : FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                if (regular) RandomAccess.SetLength(output, image.Length);
                hashes = image.CopyTo(output, sparse: regular).Hashes;
                RandomAccess.FlushToDisk(output);
            }
            if (regular) File.Move(target, drivePath, overwrite: true);
            return hashes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StateRestoreException)
        {
            if (target != drivePath) TryDelete(target);
            if (e is StateRestoreException) throw;
            throw new StateRestoreException($"cannot restore the snapshot's drive copy {string.Join(" + ", image.Files.Select(f => $"'{f}'"))} into '{drivePath}': {e.Message}", e);
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
