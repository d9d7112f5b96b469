using MiniVmm.Devices.Virtio.Block;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Memory;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.ObjectStore;
using MiniVmm.Snapshot.S3;
using MiniVmm.Snapshot.Restore;

namespace MiniVmm.Machine.Snapshots;

/// <summary>How guest RAM comes back from a snapshot file.</summary>
public enum RestoreMemoryMode
{
    /// <summary>Read and verify every page before the first instruction (the reference).</summary>
    Eager,
    /// <summary>MAP_PRIVATE of the file's page area: instant, copy-on-write, shared page cache across clones.</summary>
    Mmap,
    /// <summary>Empty RAM filled on demand through userfaultfd (checksums verified per page) plus background prefetch.</summary>
    Lazy,
}

public sealed record RestoreOptions
{
    public SerialTarget Serial { get; init; } = new SerialTarget.Stdio();
    /// <summary>Restore on a host whose CPU model differs from the one recorded (CPUID and MSRs may not match).</summary>
    public bool AllowCpuMismatch { get; init; }
    public RestoreMemoryMode Memory { get; init; } = RestoreMemoryMode.Lazy;
    /// <summary>Lazy: record the pages the guest touches during this time into FILE.ws (prefetch waits meanwhile).</summary>
    public TimeSpan? RecordWorkingSet { get; init; }
    /// <summary>Lazy: prefetch FILE.ws first when it exists (default).</summary>
    public bool UseWorkingSet { get; init; } = true;
    /// <summary>Where an incremental snapshot's parents are looked for besides its own directory.</summary>
    public IReadOnlyList<string> ChainDirectories { get; init; } = [];
    /// <summary>Image paths that replace the recorded drives' paths, in slot order (fewer: the rest keep theirs).</summary>
    public IReadOnlyList<string> DrivePaths { get; init; } = [];
    /// <summary>
    /// s3:// only: a local read-through cache of the object's blocks, shared by the clones restored on this host (the
    /// first one fetches a block from the store, the others read the file it left).
    /// </summary>
    public string? CacheDirectory { get; init; }
    /// <summary>s3:// only: the command line's --s3-profile and --s3-endpoint.</summary>
    public S3Access S3 { get; init; } = S3Access.Default;
    /// <summary>What to do with a drive whose content the snapshot captured and which changed since.</summary>
    public DriveRestoreMode Drives { get; init; } = DriveRestoreMode.Check;
    /// <summary>TEST ONLY: use the drives as they are, captured or not, changed or not (the writer tests' negative control).</summary>
    public bool UnsafeSkipDriveCheck { get; init; }
}


/// <summary>
/// Restore: the file, the recorded config and every state section are checked before a kernel object exists; then the
/// VM is built from the recorded config (devices rebuilt from their sections, which they validate), RAM is filled
/// (eagerly, mapped, or lazily) and the KVM state is applied. Every defect of the snapshot's content — including a value
/// KVM refuses — is a <see cref="SnapshotFormatException"/> or <see cref="StateRestoreException"/> (exit 120) naming
/// what is wrong; a host without a KVM feature is a <see cref="KvmSharp.KvmException"/> (exit 121).
/// </summary>
public static class VmRestore
{
    public static Vm Restore(string path, RestoreOptions options, ILoggerFactory loggers)
    {
        var log = loggers.CreateLogger("MiniVmm.Restore");
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        ObjectStoreBytes? remote = null;
        IReadOnlyList<ObjectStoreBytes> remoteParents = [];
        S3Settings? settings = null;
        SnapshotChain chain;
        if (ObjectUri.IsObjectUri(path))
        {
            var uri = ObjectUri.Parse(path);
            if (options.Memory == RestoreMemoryMode.Mmap)
                throw new ArgumentException("--memory mmap needs a local file; an s3:// snapshot restores with --memory lazy or eager");
            settings = options.S3.Resolve();
            // Owns the store, also when it throws.
            remote = ObjectStoreBytes.Open(new S3ObjectStore(settings), uri, options.CacheDirectory);
            var tip = SnapshotFile.Open(remote, uri.ToString()); // disposes remote when it throws
            if (tip.Parent is null) chain = SnapshotChain.Single(tip);
            else
            {
                // An incremental link: its parents are its neighbours in the store, each read like the tip.
                using var parents = new ObjectStoreParents(new S3ObjectStore(settings), () => new S3ObjectStore(settings), uri, options.CacheDirectory);
                chain = SnapshotChain.Resolve(tip, parents);
                remoteParents = [.. parents.Opened];
            }
        }
        else if (options.CacheDirectory is not null)
            throw new ArgumentException("--cache-dir caches blocks of an s3:// snapshot; a local file needs none");
        else chain = SnapshotChain.Open(path, options.ChainDirectories);
        var file = chain.Tip;
        log.LogDebug("snapshot opened and validated in {Ms:F2} ms ({Links} link(s))", System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds, chain.Links.Count);
        Vm? vm = null;
        bool fileAdopted = false;
        try
        {
            var recorded = RecordedVmConfig.FromJson(file.Info.VmConfig);
            CheckCompatible(file, recorded, options);
            // Drive records pair the snapshot with its drives' content; the rest is the machine's state.
            var driveRecords = DriveRecord.Of(file.Sections);
            // An object-store snapshot has no directory of its own: drive copies and a working-set file beside it
            // would be looked up under a made-up local path ("s3:/bucket/..."). Writable drives are refused when such
            // snapshots are written, so a drive record in one is not ours.
            if (remote is not null && driveRecords.Count > 0)
                throw new StateRestoreException("an s3:// snapshot holds drive records; MiniVmm does not write those to a store");
            var state = VmStateSections.FromSections([.. file.Sections.Where(s => !DriveRecord.IsDriveSection(s.Id))], recorded.Vcpus);
            IReadOnlyList<ulong>? workingSet = null;
            string wsPath = WorkingSetFile.PathFor(path);
            bool prefetchWorkingSet = options.Memory == RestoreMemoryMode.Lazy && options.UseWorkingSet && options.RecordWorkingSet is null;
            ulong topPage = TopOfRam(recorded.MemoryBytes) / GuestMemory.PageSize; // working sets hold gpa pages
            if (remote is null && prefetchWorkingSet && File.Exists(wsPath))
                workingSet = WorkingSetFile.Read(wsPath, topPage);
            else if (remote is not null && prefetchWorkingSet)
                workingSet = ReadStoredWorkingSet(settings!, ObjectUri.Parse(path), topPage, log);

            var config = new VmConfig
            {
                KernelPath = recorded.KernelPath.Length > 0 ? recorded.KernelPath : path,
                InitrdPath = recorded.InitrdPath,
                CommandLine = recorded.CommandLine,
                UserCommandLine = recorded.UserCommandLine,
                MemoryBytes = recorded.MemoryBytes,
                Vcpus = recorded.Vcpus,
                HugePages = recorded.HugePages,
                Serial = options.Serial,
                AppendTscKhz = false,
                AnnounceVirtioDevices = false,
                Drives = [.. recorded.Drives.Select(RecordedDriveSpec).Select((d, i) => i < options.DrivePaths.Count ? d with { Path = options.DrivePaths[i] } : d)],
                Rng = recorded.Rng,
                Nets = [.. (recorded.Nets ?? []).Select(RecordedNetSpec)],
            };
            try { config.Validate(); }
            catch (VmConfigException e) { throw new StateRestoreException("the snapshot's VM configuration is unusable: " + e.Message, e); }
            if (options.DrivePaths.Count > config.Drives.Count)
                throw new StateRestoreException($"{options.DrivePaths.Count} --drive paths given; the snapshot records {config.Drives.Count} drive(s)");
            // A chain's drive content at the tip's freeze comes from the captures of every link down to the base.
            IReadOnlyDictionary<int, ulong[]> driveHashes = options.UnsafeSkipDriveCheck ? new Dictionary<int, ulong[]>()
                : DriveRestore.Apply([.. chain.Links.Select(l => (l.Path, DriveRecord.Of(l.Sections)))],
                    config.Drives, options.Drives, log);
            Func<GuestMemory>? memoryFactory = null;
            if (options.Memory == RestoreMemoryMode.Mmap)
                memoryFactory = () => MapFile(chain.Base);
            // What the recorded config names must exist here in a usable form (a drive image, not a FIFO): else a bad file.
            try { vm = Vm.CreateEmpty(config, loggers, state.Devices, memoryFactory); }
            catch (VmConfigException e) { throw new StateRestoreException("the snapshot's VM cannot be rebuilt: " + e.Message, e); }
            log.LogDebug("VM built at {Ms:F2} ms", System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);

            LazyPageServer? lazy = null;
            switch (options.Memory)
            {
                case RestoreMemoryMode.Eager:
                    LoadMemory(chain, vm.Memory);
                    break;
                case RestoreMemoryMode.Mmap:
                    OverlayNewerLinks(chain, vm.Memory);
                    break;
                case RestoreMemoryMode.Lazy:
                    var stoppingVm = vm;
                    lazy = new LazyPageServer(chain, vm.Memory, log,
                        (message, fileAtFault) => stoppingVm.RequestStop(new VmExitStatus(
                            remote is { FailedUnreachable: true } || remoteParents.Any(p => p.FailedUnreachable) ? VmStopReason.StoreUnreachable
                            : fileAtFault ? VmStopReason.CorruptSnapshot : VmStopReason.InternalError, Detail: message)),
                        hugePages: recorded.HugePages);
                    vm.Adopt(chain);    // the page server reads it for the VM's lifetime
                    fileAdopted = true;
                    vm.UseMemoryBackend(lazy); // disposed after the vCPUs stop, before RAM is unmapped
                    // A working set recorded from the store goes back there; a stopping VM waits for that upload.
                    var upload = remote is not null && options.RecordWorkingSet is not null ? new PendingTask(ObjectStoreBytes.ReadDeadline) : null;
                    if (upload is not null) vm.Adopt(upload);
                    if (options.RecordWorkingSet is not null)
                        lazy.RecordingFinished += pages =>
                        {
                            if (upload is not null) { upload.Task = StoreWorkingSet(settings!, ObjectUri.Parse(path), pages, log); return; }
                            WorkingSetFile.Write(wsPath, pages);
                            log.LogInformation("recorded a working set of {Pages} pages into {Path}", pages.Count, wsPath);
                        };
                    break;
            }
            KvmVmStateCapture.Apply(vm.KvmVm, state.Kvm);
            var restoring = vm;
            foreach (var t in vm.VcpuThreads)
                t.Invoke(v => { restoring.StateCapture.Restore(v, state.Vcpus[v.Index], log); return 0; });
            foreach (var v in vm.Vcpus) v.TryNotifyClockPaused();
            // Serve faults from now on: the first KVM_RUN may already write guest RAM (kvmclock pages).
            lazy?.Start(workingSet, options.RecordWorkingSet);
            log.LogDebug("state applied at {Ms:F2} ms", System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            vm.RestoredFrom = new RestoredFrom(path, file.Identity, options.Memory.ToString().ToLowerInvariant(), chain.Links.Count) { DriveHashes = driveHashes };
            if (options.Memory != RestoreMemoryMode.Lazy) chain.Dispose();
            log.LogInformation("restored {Path} ({Mode}{Chain}): {Vcpus} vCPU(s), {Mem} MiB", path, options.Memory,
                chain.Links.Count > 1 ? $", chain of {chain.Links.Count} links" : "", recorded.Vcpus, recorded.MemoryBytes >> 20);
            return vm;
        }
        catch
        {
            vm?.Dispose();
            if (!fileAdopted) chain.Dispose();
            throw;
        }
    }

    /// <summary>The working set stored beside an s3:// snapshot (null: none); a store that fails here only costs the order of prefetch.</summary>
    private static IReadOnlyList<ulong>? ReadStoredWorkingSet(S3Settings settings, ObjectUri uri, ulong topPage, ILogger log)
    {
        using var store = new S3ObjectStore(settings);
        try
        {
            var pages = ObjectStoreWorkingSet.TryRead(store, uri, topPage);
            if (pages is not null) log.LogInformation("prefetching the working set {Uri} ({Pages} pages) first", ObjectStoreWorkingSet.For(uri), pages.Count);
            return pages;
        }
        catch (ObjectStoreException e) when (!e.Unreachable)
        {
            log.LogWarning("the working set beside {Uri} cannot be read ({Error}); prefetching in address order", uri, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Uploads a recorded working set beside the s3:// snapshot, off the page server's thread (a slow store must not hold
    /// a fault), with its own client.
    /// </summary>
    private static Task StoreWorkingSet(S3Settings settings, ObjectUri uri, IReadOnlyList<ulong> pages, ILogger log) => Task.Run(() =>
    {
        try
        {
            using var store = new S3ObjectStore(settings);
            ObjectStoreWorkingSet.Write(store, uri, pages);
            log.LogInformation("recorded a working set of {Pages} pages into {Uri}", pages.Count, ObjectStoreWorkingSet.For(uri));
        }
        catch (ObjectStoreException e)
        {
            log.LogWarning("the working set could not be stored beside {Uri}: {Error}", uri, e.Message);
        }
    });

    /// <summary>
    /// Maps the page area of each region privately. Snapshots are never modified in place (a new one is written aside
    /// and renamed over the old path, leaving the mapped inode unchanged), and incomplete files were refused by Open.
    /// </summary>
    private static GuestMemory MapFile(SnapshotFile file)
    {
        using var handle = File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read);
        var regions = file.Info.Regions.Select((r, i) => (r.GuestAddress, r.Size, file.RegionDataOffset(i))).ToList();
        return GuestMemory.MapPrivate(handle, regions); // the mappings keep the file; the descriptor can go
    }

    private static MiniVmm.Devices.Virtio.Net.NetSpec RecordedNetSpec(RecordedNet n)
    {
        try { return MiniVmm.Devices.Virtio.Net.NetSpec.Parse($"tap={n.Tap},mac={n.Mac}"); }
        catch (FormatException e) { throw new StateRestoreException("the snapshot records a bad network device: " + e.Message, e); }
    }

    private static DriveSpec RecordedDriveSpec(RecordedDrive d)
    {
        if (d is null || string.IsNullOrEmpty(d.Path)) throw new StateRestoreException("the snapshot records a drive without a path");
        var cache = DriveSpec.TryParseCache(d.Cache)
            ?? throw new StateRestoreException($"the snapshot records drive '{d.Path}' with unknown cache mode '{d.Cache}'");
        return new DriveSpec(d.Path, d.ReadOnly, cache);
    }

    private static ulong TopOfRam(ulong memoryBytes) =>
        GuestMemoryLayout.RamRanges(memoryBytes) is var ranges ? ranges[^1].GuestAddress + ranges[^1].Size : 0;

    private static void CheckCompatible(SnapshotFile file, RecordedVmConfig recorded, RestoreOptions options)
    {
        var regions = file.Info.Regions;
        if (!GuestMemoryLayout.Matches(regions.Select(r => (r.GuestAddress, r.Size)), recorded.MemoryBytes))
            throw new StateRestoreException($"the snapshot's memory layout ({string.Join(", ", regions.Select(r => $"0x{r.GuestAddress:x}+{r.Size}"))}) does not match its recorded {recorded.MemoryBytes}-byte RAM");
        if (recorded.Vcpus < 1 || recorded.Vcpus > VmConfig.MaxVcpus)
            throw new StateRestoreException($"the snapshot records {recorded.Vcpus} vCPUs; 1..{VmConfig.MaxVcpus} supported");
        string host = RecordedVmConfig.HostCpuModel();
        if (!options.AllowCpuMismatch && file.Info.HostCpuModel != host)
            throw new StateRestoreException($"the snapshot was taken on a '{file.Info.HostCpuModel}' host; this one is '{host}' (CPUID and MSRs may differ; pass --allow-cpu-mismatch to try anyway)");
    }

    /// <summary>
    /// mmap restore of a chain: the base is mapped; each page a newer link stored is read over it (copy-on-write into
    /// the private mapping), checksum verified.
    /// </summary>
    private static void OverlayNewerLinks(SnapshotChain chain, GuestMemory memory)
    {
        int baseIndex = chain.Links.Count - 1;
        if (baseIndex == 0) return;
        for (int ri = 0; ri < memory.Regions.Count; ri++)
        {
            var region = memory.Regions[ri];
            for (long p = 0; p < region.PageCount;)
            {
                int owner = chain.OwnerOf(ri, p);
                if (owner < 0 || owner == baseIndex) { p++; continue; }
                long end = p + 1;
                while (end < region.PageCount && end - p < 512 && chain.OwnerOf(ri, end) is var o && o >= 0 && o != baseIndex) end++;
                chain.ReadPages(ri, p, region.GetSpan((ulong)p * GuestMemory.PageSize, (int)((end - p) * (long)GuestMemory.PageSize)));
                p = end;
            }
        }
    }

    /// <summary>Reads present pages straight into guest RAM in 2 MiB batches (absent pages stay zero), verifying checksums.</summary>
    private static void LoadMemory(ISnapshotPages file, GuestMemory memory)
    {
        const long batch = 512;
        for (int ri = 0; ri < memory.Regions.Count; ri++)
        {
            var region = memory.Regions[ri];
            for (long first = 0; first < region.PageCount; first += batch)
            {
                long count = Math.Min(batch, region.PageCount - first);
                bool any = false;
                for (long p = first; p < first + count && !any; p++) any = file.IsPresent(ri, p);
                if (!any) continue; // leave never-touched RAM unpopulated
                file.ReadPages(ri, first, region.GetSpan((ulong)first * GuestMemory.PageSize, (int)(count * (long)GuestMemory.PageSize)));
            }
        }
    }
}
