using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>One drive as a snapshot records it (for <c>snapshot inspect</c>): the image, and what captured its content.</summary>
public sealed record SnapshotDriveInfo(int Slot, string Path, bool ReadOnly, string Cache, DriveRecord? Captured, string? CopyPath, bool CopyPresent);

public static class SnapshotDrives
{
    /// <summary>The drives <paramref name="file"/> records; empty when its VM configuration is not MiniVmm's.</summary>
    /// <exception cref="SnapshotFormatException">A drive record is malformed.</exception>
    public static IReadOnlyList<SnapshotDriveInfo> Of(SnapshotFile file)
    {
        RecordedVmConfig recorded;
        try { recorded = RecordedVmConfig.FromJson(file.Info.VmConfig); }
        catch (StateRestoreException) { return []; }
        Dictionary<int, DriveRecord> records;
        try { records = DriveRecord.Of(file.Sections).ToDictionary(r => r.Slot); }
        catch (Exception e) when (e is StateRestoreException or ArgumentException) { throw new SnapshotFormatException(e.Message, e); }
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file.Path))!;
        return [.. recorded.Drives.Select((d, slot) =>
        {
            var record = records.GetValueOrDefault(slot);
            string? copy = record is null ? null : System.IO.Path.Combine(directory, record.File);
            return new SnapshotDriveInfo(slot, d.Path, d.ReadOnly, d.Cache, record, copy, copy is not null && File.Exists(copy));
        })];
    }

    /// <summary>The text <c>snapshot inspect</c> prints (empty without drives).</summary>
    public static string Describe(IReadOnlyList<SnapshotDriveInfo> drives)
    {
        if (drives.Count == 0) return "";
        var text = new System.Text.StringBuilder("drives:\n");
        foreach (var d in drives)
        {
            text.Append($"  {d.Slot}: {d.Path} ({(d.ReadOnly ? "read-only" : "writable")}, cache={d.Cache}): ");
            text.Append(d.Captured is { } r
                ? r.IsLink
                    ? $"pages written since the parent in {r.File} ({r.PagesHeld} of {r.PageCount} pages of 4 KiB, {r.BytesStored} bytes stored; drive checksum at the freeze {r.Checksum:x16}){(d.CopyPresent ? "" : " MISSING")}\n"
                    : $"content at the freeze in {r.File} ({r.Length} bytes, {r.BytesStored} stored, checksum {r.Checksum:x16}){(d.CopyPresent ? "" : " MISSING")}\n"
                : d.ReadOnly ? "not captured (read-only: it cannot change under the guest)\n" : "not captured (a snapshot from before drive capture)\n");
        }
        return text.ToString();
    }
}
