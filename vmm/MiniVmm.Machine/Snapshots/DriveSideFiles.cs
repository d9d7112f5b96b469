using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// The drive captures beside MiniVmm's snapshots (<c>SNAPSHOT.driveN</c>) for merge and prune: a merged chain gets one
/// full capture per drive, resolved from every link's capture and verified against the tip's checksum; a deleted link
/// takes its captures with it.
/// </summary>
public sealed class DriveSideFiles : ISnapshotSideFiles
{
    public static readonly DriveSideFiles Instance = new();

    public IReadOnlyList<string> Of(SnapshotFile file)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(file.Path))!;
        return [.. Records(file).Select(r => Path.Combine(directory, r.File))];
    }

    public (IReadOnlyList<StateSection> Sections, IReadOnlyList<string> Files) Merge(SnapshotChain chain, string outputPath, bool fsync)
    {
        var tipRecords = Records(chain.Tip);
        if (tipRecords.Count == 0) return (chain.Tip.Sections, []);
        var links = chain.Links.Select(l => (l.Path, Records(l))).ToList();
        var written = new List<string>();
        var records = new List<StateSection>();
        try
        {
            foreach (var tip in tipRecords)
            {
                string final = DriveRecord.SiblingPath(outputPath, tip.Slot);
                string partial = final + ".partial";
                long stored;
                using (var image = DriveChainImage.Open(links, tip.Slot))
                using (var target = File.OpenHandle(partial, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
                {
                    written.Add(partial);
                    RandomAccess.SetLength(target, image.Length);
                    stored = image.CopyTo(target, sparse: true).BytesWritten;
                    if (fsync) RandomAccess.FlushToDisk(target);
                }
                File.Move(partial, final, overwrite: true);
                written[^1] = final;
                records.Add(new DriveRecord(tip.Slot, tip.Length, tip.BlockSize, tip.Checksum, stored, Path.GetFileName(final)).ToSection());
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StateRestoreException)
        {
            foreach (string f in written) TryDelete(f);
            throw new SnapshotFormatException($"cannot merge the chain's drive captures: {e.Message}", e);
        }
        return ([.. chain.Tip.Sections.Where(s => !DriveRecord.IsDriveSection(s.Id)), .. records], written);
    }

    private static IReadOnlyList<DriveRecord> Records(SnapshotFile file)
    {
        try { return DriveRecord.Of(file.Sections); }
        catch (StateRestoreException e) { throw new SnapshotFormatException($"snapshot '{file.Path}': {e.Message}", e); }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
