using Microsoft.Win32.SafeHandles;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>
/// One snapshot's capture of the VM's writable drives, each into <c>SNAPSHOT.drive{SLOT}</c> beside the snapshot file:
/// prepared before the freeze (files created and sized: a refusal costs the guest nothing), started at the freeze
/// (<see cref="Begin"/>, vCPUs paused and devices quiesced, so the drive's content and RAM are of the same instant),
/// completed after RAM (<see cref="Complete"/>, which waits for the copiers, syncs and renames the files into place and
/// returns the records that pair them with the snapshot). Any failure removes every file it wrote.
/// </summary>
internal sealed class DriveSnapshot : IDisposable
{
    private sealed record Entry(int Slot, RawImage Image, string FinalPath, string PartialPath, SafeFileHandle Target, DriveCapture Capture)
    {
        /// <summary>The pages written since the last freeze, taken from the drive's change log at this freeze.</summary>
        public ulong[]? Taken;
    }

    private readonly List<Entry> _entries;
    private readonly CancellationTokenSource _cancel = new();
    private readonly List<string> _renamed = new();
    private readonly DriveLineage? _lineage;
    private readonly bool _link;
    private readonly bool _dropOneChangedBlock;
    private bool _completed;
    private bool _aborted;

    private DriveSnapshot(List<Entry> entries, DriveLineage? lineage, bool link, bool dropOneChangedBlock)
    {
        _entries = entries;
        _lineage = lineage;
        _link = link;
        _dropOneChangedBlock = dropOneChangedBlock;
    }

    /// <summary>The writable drives of <paramref name="vm"/> in slot order.</summary>
    public static IReadOnlyList<(int Slot, RawImage Image)> WritableDrives(Vm vm) =>
        [.. vm.VirtioDevices.OfType<VirtioBlock>().Select((d, slot) => (slot, d.Image)).Where(d => !d.Image.ReadOnly)];

    /// <summary>Creates the capture files for <paramref name="snapshotPath"/>; null when the VM has no writable drive.</summary>
    /// <param name="lineage">the VM's drive changes between snapshots (null: not tracked): taken at the freeze</param>
    /// <param name="link">an incremental link: store only the pages written since the parent (its hashes are in the lineage)</param>
    /// <param name="dropOneChangedBlock">TEST ONLY: leave one changed capture block out of the link (the negative control)</param>
    /// <exception cref="IOException">A file cannot be created (nothing is left behind).</exception>
    public static DriveSnapshot? Prepare(Vm vm, string snapshotPath, DriveLineage? lineage = null, bool link = false, bool dropOneChangedBlock = false)
    {
        if (link && lineage is null) throw new ArgumentException("internal error: a drive link needs the drives' lineage");
        var drives = WritableDrives(vm);
        if (drives.Count == 0) return null;
        var entries = new List<Entry>();
        try
        {
            foreach (var (slot, image) in drives)
            {
                string final = DriveRecord.SiblingPath(snapshotPath, slot);
                string partial = final + ".partial";
                File.Delete(partial); // a leftover of a crashed run: never our own live file (one snapshot at a time)
                var target = File.OpenHandle(partial, FileMode.CreateNew, FileAccess.ReadWrite);
                try { RandomAccess.SetLength(target, image.Length); }
                catch
                {
                    target.Dispose();
                    File.Delete(partial);
                    throw;
                }
                entries.Add(new Entry(slot, image, final, partial, target, new DriveCapture(image.File, image.Length, target, nextData: image.NextData)));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            foreach (var entry in entries) { entry.Target.Dispose(); TryDelete(entry.PartialPath); }
            throw new IOException($"cannot create the drive capture file beside '{snapshotPath}': {e.Message}", e);
        }
        return new DriveSnapshot(entries, lineage, link, dropOneChangedBlock);
    }

    /// <summary>True once <see cref="Begin"/> ran (the freeze happened).</summary>
    public bool Began { get; private set; }

    public long BytesStored => _entries.Sum(e => e.Capture.BytesStored);
    public long CopiedBeforeWrite => _entries.Sum(e => e.Capture.CopiedBeforeWrite);

    /// <summary>The freeze: call with the vCPUs paused and the devices quiesced (nothing is writing a drive).</summary>
    public void Begin()
    {
        if (Began || _aborted) return;
        Began = true;
        foreach (var e in _entries)
        {
            e.Taken = _lineage?.TakeChanges(e.Slot, e.Image);
            if (_link)
            {
                var changed = e.Taken ?? throw new InvalidOperationException($"internal error: drive {e.Slot} was not tracked since its parent");
                if (_dropOneChangedBlock) changed = WithoutFirstBlock(changed, e.Capture.BlockSize);
                e.Capture.LimitToChangedPages(_lineage!.ParentHashes(e.Slot), changed);
            }
            e.Image.Capture = e.Capture;
            e.Capture.Start(_cancel.Token);
        }
    }

    /// <summary>
    /// The changed set without the pages of the first changed capture block: the link then takes that block for the
    /// parent's (its hash too), so its checksum agrees and only the guest can tell the disk is wrong.
    /// </summary>
    private static ulong[] WithoutFirstBlock(ulong[] changed, int blockSize)
    {
        var copy = (ulong[])changed.Clone();
        int w = Array.FindIndex(copy, x => x != 0);
        if (w < 0) return copy;
        long perBlock = blockSize / DriveChangeLog.PageSize;
        long first = (w * 64L + System.Numerics.BitOperations.TrailingZeroCount(copy[w])) / perBlock * perBlock;
        for (long p = first; p < first + perBlock && (p >> 6) < copy.Length; p++) BlockBits.Clear(copy, p);
        return copy;
    }

    /// <summary>
    /// Waits for every drive to be captured, syncs and renames the files into place, and returns their records.
    /// Throws (an <see cref="IOException"/> naming the drive) when a capture failed; the caller then aborts.
    /// </summary>
    public IReadOnlyList<StateSection> Complete(CancellationToken cancel)
    {
        if (!Began) throw new InvalidOperationException("internal error: the drives were not captured at the freeze");
        var sections = new List<StateSection>();
        foreach (var e in _entries)
        {
            while (!e.Capture.WaitCompleted(TimeSpan.FromMilliseconds(100)))
                if (cancel.IsCancellationRequested) { e.Capture.Cancel(); break; }
            e.Image.Capture = null;
            if (e.Capture.Error is { } error)
                throw error is IOException io
                    ? new IOException($"drive {e.Slot} ('{e.Image.Path}') could not be captured into '{e.PartialPath}': {io.Message}", io) { HResult = io.HResult }
                    : new OperationCanceledException($"drive {e.Slot}: {error.Message}", error);
            RandomAccess.FlushToDisk(e.Target); // the handle stays this snapshot's, disposed with it
            File.Move(e.PartialPath, e.FinalPath, overwrite: true);
            _renamed.Add(e.FinalPath);
            sections.Add(new DriveRecord(e.Slot, e.Image.Length, e.Capture.BlockSize, e.Capture.Checksum, e.Capture.BytesStored,
                Path.GetFileName(e.FinalPath), e.Capture.IsLink ? e.Capture.StoredPages.ToArray() : null).ToSection());
        }
        _completed = true;
        return sections;
    }

    /// <summary>The snapshot failed or was cancelled: stop capturing and remove every file written. Never throws.</summary>
    public void Abort()
    {
        if (_aborted) return;
        _aborted = true;
        _cancel.Cancel();
        foreach (var e in _entries)
        {
            e.Capture.Cancel();
            e.Image.Capture = null;
            TryDelete(e.PartialPath);
            _lineage?.Failed(e.Slot, e.Taken);
        }
        foreach (string path in _renamed) TryDelete(path);
    }

    /// <summary>After the snapshot file itself was completed: nothing more to undo; its drives are the next link's parents.</summary>
    public void Commit()
    {
        _renamed.Clear();
        if (_lineage is null) return;
        foreach (var e in _entries) _lineage.Committed(e.Slot, e.Capture.BlockHashes());
    }

    /// <summary>The 4 KiB pages the links of this snapshot stored (null: full captures).</summary>
    public long? LinkPages => _link ? _entries.Sum(e => BlockBits.Count(e.Capture.StoredPages)) : null;

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        if (!_completed) Abort();
        foreach (var e in _entries)
        {
            e.Image.Capture = null;
            e.Target.Dispose();
        }
        _cancel.Dispose();
    }
}
