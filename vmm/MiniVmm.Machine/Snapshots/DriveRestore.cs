using KvmSharp;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
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
    public static void Apply(string snapshotPath, IReadOnlyList<DriveRecord> records, IReadOnlyList<DriveSpec> drives,
        DriveRestoreMode mode, ILogger log)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(snapshotPath))!;
        foreach (var record in records)
        {
            if (record.Slot >= drives.Count)
                throw new StateRestoreException($"the snapshot captured drive {record.Slot}, but records only {drives.Count} drive(s)");
            var drive = drives[record.Slot];
            if (drive.ReadOnly) throw new StateRestoreException($"the snapshot captured drive {record.Slot} ('{drive.Path}'), which it records as read-only");
            string copy = Path.Combine(directory, record.File);
            if (mode == DriveRestoreMode.FromSnapshot)
            {
                WriteBack(copy, drive.Path, record);
                log.LogInformation("drive {Slot}: restored the snapshot's copy {Copy} into {Path}", record.Slot, copy, drive.Path);
                continue;
            }
            ulong found;
            try
            {
                using var handle = File.OpenHandle(drive.Path, FileMode.Open, FileAccess.Read, FileShare.Read);
                long length = RandomAccess.GetLength(handle);
                if (length != record.Length)
                    throw new StateRestoreException($"drive {record.Slot} ('{drive.Path}') is {length} bytes; the snapshot captured {record.Length}. {Hint(copy)}");
                found = DriveChecksum.Compute(handle, length, record.BlockSize);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StateRestoreException($"cannot check drive {record.Slot} ('{drive.Path}') against the snapshot: {e.Message}. {Hint(copy)}", e);
            }
            if (found != record.Checksum)
                throw new StateRestoreException($"drive {record.Slot} ('{drive.Path}') changed since the snapshot: it no longer holds the content captured at the freeze. {Hint(copy)}");
            log.LogDebug("drive {Slot}: {Path} holds the content the snapshot captured", record.Slot, drive.Path);
        }
    }

    private static string Hint(string copy) =>
        $"Pass --drive-from-snapshot to write the snapshot's copy ('{copy}') into it, or --drive FILE to restore onto another image";

    /// <summary>
    /// Verifies the copy against the record, then writes it into the drive: a regular file is replaced atomically (a
    /// sparse copy written aside, synced and renamed over it); anything else is written in place.
    /// </summary>
    private static void WriteBack(string copy, string drivePath, DriveRecord record)
    {
        try
        {
            using var source = File.OpenHandle(copy, FileMode.Open, FileAccess.Read);
            long length = RandomAccess.GetLength(source);
            if (length != record.Length)
                throw new StateRestoreException($"the snapshot's drive copy '{copy}' is {length} bytes; the snapshot recorded {record.Length}");
            if (DriveChecksum.Compute(source, length, record.BlockSize) != record.Checksum)
                throw new StateRestoreException($"the snapshot's drive copy '{copy}' does not match the checksum the snapshot recorded (replaced or corrupted)");
            bool regular = !File.Exists(drivePath) || FileKinds.Of(drivePath) == FileKind.Regular;
            string target = regular ? drivePath + ".restoring" : drivePath;
            using (var output = File.OpenHandle(target, regular ? FileMode.Create : FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                if (regular) RandomAccess.SetLength(output, length);
                Copy(source, output, length, sparse: regular);
                RandomAccess.FlushToDisk(output);
            }
            if (regular) File.Move(target, drivePath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StateRestoreException($"cannot restore the snapshot's drive copy '{copy}' into '{drivePath}': {e.Message}", e);
        }
    }

    private static void Copy(SafeFileHandle source, SafeFileHandle target, long length, bool sparse)
    {
        var buffer = new byte[1 << 20];
        for (long offset = 0; offset < length;)
        {
            var data = buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset));
            FileReads.ReadFully(source, data, offset);
            if (!sparse || data.ContainsAnyExcept((byte)0)) RandomAccess.Write(target, data, offset);
            offset += data.Length;
        }
    }
}
