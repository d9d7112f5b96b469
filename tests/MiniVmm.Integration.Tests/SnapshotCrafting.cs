using MiniVmm.Snapshot.Format;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Writes a copy of a real snapshot with other state sections or another VM config, through the snapshot writer, so
/// every checksum (state, trailer, header) is recomputed: the copy passes every format check and only its content is
/// wrong — what a restore must still refuse as a bad file.
/// </summary>
public static class SnapshotCrafting
{
    public static string Craft(string source, string name, Func<List<StateSection>, List<StateSection>>? sections = null,
        Func<string, string>? config = null)
    {
        using var file = SnapshotFile.Open(source);
        var info = file.Info with { VmConfig = config is null ? file.Info.VmConfig : config(file.Info.VmConfig) };
        string path = GuestFiles.TempPath(name);
        using var sink = SnapshotFileSink.Create(path, info, fsync: false);
        var page = new byte[SnapshotFormat.PageSize];
        for (int r = 0; r < info.Regions.Count; r++)
            for (long p = 0; p < info.Regions[r].PageCount; p++)
            {
                if (!file.IsPresent(r, p)) continue;
                file.ReadPage(r, p, page);
                sink.WritePages(r, p, page);
            }
        var list = file.Sections.ToList();
        sink.Complete(sections is null ? list : sections(list));
        return path;
    }

    /// <summary>The sections with the one named <paramref name="id"/> replaced by <paramref name="change"/>'s result.</summary>
    public static List<StateSection> Replace(this List<StateSection> sections, string id, Func<StateSection, StateSection> change)
    {
        int i = sections.FindIndex(s => s.Id == id);
        if (i < 0) throw new ArgumentException($"no section '{id}' in the source snapshot");
        sections[i] = change(sections[i]);
        return sections;
    }

    public static List<StateSection> Without(this List<StateSection> sections, string id)
    {
        if (sections.RemoveAll(s => s.Id == id) != 1) throw new ArgumentException($"no section '{id}' in the source snapshot");
        return sections;
    }
}
