using KvmSharp;
using KvmSharp.Abi;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Boot;
using MiniVmm.Core.Bus;
using MiniVmm.Core.Memory;
using MiniVmm.Core.Runtime;
using MiniVmm.Devices;
using MiniVmm.Machine.Devices;
using MiniVmm.Machine.Diagnostics;
using MiniVmm.Machine.State;
using MiniVmm.Machine.Vcpus;

namespace MiniVmm.Machine;

/// <summary>
/// The composition root of one virtual machine. It owns every kernel object of the VM (KVM system and VM fds, guest
/// RAM, vCPUs and their threads, the main loop) through one <see cref="OrderedLifetime{TLevel}"/>: built level by level
/// (<see cref="VmLevel"/>) and released in the reverse order, never under a thread that still runs. <see cref="Run"/> drives the main
/// loop on the calling thread until the guest exits, a fatal exit happens or a stop is requested.
/// </summary>
public sealed partial class Vm : IDisposable
{
    private readonly ILogger _log;
    private readonly OrderedLifetime<VmLevel> _life;
    private readonly VcpuThread[] _vcpuThreads;
    private readonly Vcpu[] _vcpus;
    private VmExitStatus? _exitStatus;
    private readonly ConsoleTail? _consoleTail;
    private int _stopping;
    private IGuestMemoryBackend? _memoryBackend; // lazy restore: serves RAM on demand

    public VmConfig Config { get; }
    internal KvmSystem Kvm { get; }
    internal VirtualMachine KvmVm { get; }
    public GuestMemory Memory { get; }
    public Bus Pio { get; }
    public Bus Mmio { get; }
    public MainLoop Loop { get; }
    public int TscKhz { get; }
    public string EffectiveCommandLine { get; }
    public IReadOnlyList<VcpuThread> VcpuThreads => _vcpuThreads;
    internal IReadOnlyList<Vcpu> Vcpus => _vcpus;
    internal kvm_cpuid_entry2[] SupportedCpuid { get; }
    internal VcpuStateCapture StateCapture { get; }

    /// <summary>The snapshot this VM was restored from (null for a booted VM): an incremental snapshot can continue it.</summary>
    public RestoredFrom? RestoredFrom { get; internal set; }

    /// <summary>
    /// Raised on the main-loop thread after the loop has ended and before the vCPUs stop: work that the loop would have
    /// finished (a snapshot in progress) completes here, while guest RAM still exists.
    /// </summary>
    public event Action? ShuttingDown;

    /// <summary>Raised (on a vCPU thread) when the guest writes 1 to the control port.</summary>
    public event Action? GuestSnapshotRequested;

    /// <summary>Builds the levels above <see cref="VmLevel.Memory"/>; on failure the caller disposes <paramref name="life"/>, which holds them all.</summary>
    private Vm(VmConfig config, ILoggerFactory loggers, OrderedLifetime<VmLevel> life, KvmSystem kvm, VirtualMachine kvmVm, GuestMemory memory,
        IReadOnlyList<DeviceState>? restoredDevices, LinuxKernelImage? linuxKernel)
    {
        Config = config;
        _log = loggers.CreateLogger("MiniVmm.Vm");
        _life = life;
        Kvm = kvm;
        KvmVm = kvmVm;
        Memory = memory;
        Pio = new Bus(BusKind.Pio, "pio");
        Mmio = new Bus(BusKind.Mmio, "mmio");
        Loop = life.Own(VmLevel.MainLoop, new MainLoop(loggers.CreateLogger("MiniVmm.MainLoop")));
        // A device worker stuck in host I/O may still read or write guest RAM through its spans.
        life.Guard(VmLevel.Devices, "virtio device workers", () => _virtio.All(d => d.HasStopped));
        _vcpus = new Vcpu[config.Vcpus];
        _vcpuThreads = new VcpuThread[config.Vcpus];
        // A thread still inside KVM_RUN uses kvm_run and guest RAM: unmapping them under it would crash the process.
        life.Guard(VmLevel.VcpuThreads, "vCPU threads", () => _vcpuThreads.All(t => t is null || t.HasEnded));

        // Level by level; each uses only the levels below it, and every resource is owned by _life when acquired.
        _consoleTail = new ConsoleTail();
        Devices = BuildDevices(restoredDevices, new TailingSink(CreateSerialSink(config.Serial), _consoleTail), loggers);
        Pio.Freeze();
        Mmio.Freeze();
        SupportedCpuid = kvm.GetSupportedCpuid();
        CreateVcpus(loggers);
        TscKhz = SafeTscKhz(_vcpus[0]);
        StateCapture = DiscoverVcpuState(kvm, loggers);
        EffectiveCommandLine = ComposeCommandLine(linuxKernel);
    }

    private void CreateVcpus(ILoggerFactory loggers)
    {
        var dispatcher = new VmExitDispatcher(Pio, Mmio, Memory, RequestStop, () => Volatile.Read(ref _stopping) != 0,
            loggers.CreateLogger("MiniVmm.Exits"));
        var vcpuLog = loggers.CreateLogger("MiniVmm.Vcpu");
        for (int i = 0; i < Config.Vcpus; i++)
        {
            var vcpu = _life.Own(VmLevel.Vcpus, KvmVm.CreateVcpu(i));
            _vcpus[i] = vcpu;
            vcpu.SetCpuid(CpuidTable.ForVcpu(SupportedCpuid, i, Config.Vcpus));
            var thread = _life.Own(VmLevel.VcpuThreads, new VcpuThread(vcpu, dispatcher, vcpuLog));
            thread.Exited += OnVcpuExited;
            _vcpuThreads[i] = thread;
        }
    }

    /// <summary>
    /// Found now, while no vCPU runs: which MSRs KVM can save. Doing it at the first snapshot would add the discovery's
    /// many ioctls to that snapshot's downtime.
    /// </summary>
    private VcpuStateCapture DiscoverVcpuState(KvmSystem kvm, ILoggerFactory loggers)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var capture = new VcpuStateCapture(kvm, loggers.CreateLogger("MiniVmm.State"));
        capture.DiscoverMsrs(_vcpus[0]);
        _log.LogDebug("MSR discovery took {Ms:F2} ms", System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        return capture;
    }

    /// <summary>The user's command line plus MiniVmm's defaults and the virtio announcements, within the kernel's limit.</summary>
    private string ComposeCommandLine(LinuxKernelImage? linuxKernel)
    {
        var config = Config;
        // A Linux kernel gets its own defaults (console=ttyS0, tsc_early_khz=); MiniVmm's guests read tsc_khz=.
        string cmdline = !config.AppendTscKhz ? config.CommandLine
            : linuxKernel is not null ? LinuxCommandLine.WithDefaults(config.CommandLine, TscKhz)
            : !LinuxCommandLine.HasParameter(config.CommandLine, "tsc_khz") ? (config.CommandLine + " tsc_khz=" + TscKhz).Trim()
            : config.CommandLine;
        if (config.AnnounceVirtioDevices && _virtioAnnouncements.Count > 0)
            cmdline = (cmdline + " " + string.Join(' ', _virtioAnnouncements)).Trim();
        int userBytes = System.Text.Encoding.UTF8.GetByteCount(config.CommandLine);
        int effectiveBytes = System.Text.Encoding.UTF8.GetByteCount(cmdline);
        int limit = linuxKernel?.CommandLineLimit ?? PvhLoader.MaxCommandLineBytes;
        string appended = linuxKernel is not null ? "console=, tsc_early_khz=" : "tsc_khz=";
        if (effectiveBytes > limit && userBytes <= limit)
            throw new VmConfigException($"the kernel command line is {userBytes} bytes; with what MiniVmm appends ({appended}, " +
                $"virtio_mmio.device=) it is {effectiveBytes}, above this kernel's limit of {limit}: shorten it, or pass {appended} yourself");
        return cmdline;
    }

    /// <summary>
    /// Builds a VM from <paramref name="config"/> and loads its kernel. Configuration and image problems throw
    /// <see cref="VmConfigException"/>; missing KVM features throw <see cref="KvmException"/> with a hint.
    /// </summary>
    public static Vm Create(VmConfig config, ILoggerFactory loggers)
    {
        config.Validate();
        byte[] kernel = ReadKernel(config.KernelPath);
        var (pvh, linux) = ParseKernel(config.KernelPath, kernel, withInitrd: config.InitrdPath is not null);
        if (config.InitrdPath is not null && linux is null)
            throw new VmConfigException($"--initrd needs a Linux kernel (vmlinux or bzImage); {config.KernelPath} is a PVH image");
        byte[] initrd = config.InitrdPath is null ? [] : ReadInitrd(config.InitrdPath, config.MemoryBytes);

        var vm = CreateEmpty(config, loggers, linuxKernel: linux);
        try
        {
            if (linux is not null) vm.LoadLinux(linux, initrd);
            else vm.LoadPvh(pvh!);
            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>A VM with RAM, devices and vCPUs but nothing loaded (restore fills it from a snapshot).</summary>
    /// <param name="restoredDevices">The snapshot's device states when restoring; null on boot.</param>
    /// <param name="linuxKernel">The kernel about to be loaded with the Linux protocol: its command-line defaults and limit apply.</param>
    internal static Vm CreateEmpty(VmConfig config, ILoggerFactory loggers, IReadOnlyList<DeviceState>? restoredDevices = null, Func<GuestMemory>? memoryFactory = null,
        LinuxKernelImage? linuxKernel = null)
    {
        config.Validate();
        var life = new OrderedLifetime<VmLevel>(loggers.CreateLogger("MiniVmm.Vm"));
        try
        {
            var kvm = life.Own(VmLevel.Kvm, KvmSystem.Open());
            kvm.RequireCapabilities(
                KvmCapability.IrqChip, KvmCapability.UserMemory, KvmCapability.ImmediateExit, KvmCapability.Pit2, KvmCapability.ExtCpuid,
                // Snapshots save these vCPU parts; with them required, every saved part is required on restore too.
                KvmCapability.Xsave, KvmCapability.Xcrs, KvmCapability.VcpuEvents, KvmCapability.DebugRegs);
            int maxVcpus = kvm.CheckExtension(KvmCapability.MaxVcpus);
            if (maxVcpus > 0 && config.Vcpus > maxVcpus)
                throw new VmConfigException($"KVM supports at most {maxVcpus} vCPUs; {config.Vcpus} requested");
            var kvmVm = life.Own(VmLevel.Kvm, kvm.CreateVm());
            // Memory slots go in before the irqchip and PIT: those register in-kernel I/O devices, which starts an
            // SRCU grace period, and a memslot update right after waits for it (measured: docs/DESIGN-NOTES.md,
            // "VM start-up").
            var memory = life.Own(VmLevel.Memory, memoryFactory?.Invoke() ?? GuestMemory.CreateAnonymous(config.MemoryBytes, config.HugePages));
            foreach (var region in memory.Regions)
                region.MapInto(kvmVm);
            if (kvm.CheckExtension(KvmCapability.SetTssAddr) > 0)
                kvmVm.SetTssAddress(0xfffb_d000); // VMX needs a real-mode TSS somewhere outside RAM
            kvmVm.CreateIrqChip();
            kvmVm.CreatePit2();
            return new Vm(config, loggers, life, kvm, kvmVm, memory, restoredDevices, linuxKernel);
        }
        catch
        {
            life.Dispose();
            throw;
        }
    }

    private static byte[] ReadKernel(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists && !Directory.Exists(path)) throw new VmConfigException($"kernel '{path}' does not exist");
            // A device reports length 0 and reads for ever; a FIFO blocks in open: only regular files are kernels.
            if (FileKinds.Refusal(path, "kernel", "a regular file", FileKind.Regular) is { } why) throw new VmConfigException(why);
            if (info.Length > 256L << 20) throw new VmConfigException($"kernel '{path}' is {info.Length} bytes; more than 256 MiB is not a kernel");
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VmConfigException($"cannot read kernel '{path}': {e.Message}", e);
        }
    }

    private void LoadPvh(PvhElfImage image)
    {
        PvhBootInfo boot;
        try
        {
            // ACPI tables too: a PVH Linux kernel (CONFIG_PVH) finds the vCPUs, the IOAPIC and the virtio devices there.
            boot = PvhLoader.Load(Memory, image, EffectiveCommandLine, PvhLoader.MemoryMapFor([.. Memory.Regions.Select(r => (r.GuestAddress.Value, r.Size))]),
                Core.Boot.Acpi.AcpiTables.Build(_vcpus.Length, _virtioWindows));
        }
        catch (BootImageException e)
        {
            throw new VmConfigException($"{Config.KernelPath}: {e.Message}", e);
        }
        PvhEntryState.Apply(_vcpus[0], boot.Entry, boot.StartInfoGpa, 0);
        for (int i = 1; i < _vcpus.Length; i++)
        {
            if (boot.ApEntry is uint apEntry)
            {
                // MiniVmm's AP protocol: each AP starts like the BSP, at the entry the image declares, ESI = index.
                PvhEntryState.Apply(_vcpus[i], apEntry, boot.StartInfoGpa, i);
                _vcpus[i].SetMpState(VcpuMpState.Runnable);
            }
            // Otherwise the AP waits for INIT/SIPI from the guest, as on real hardware.
        }
        _log.LogInformation("loaded PVH image: entry 0x{Entry:x}, {Vcpus} vCPU(s), {Mem} MiB, cmdline \"{Cmdline}\"",
            boot.Entry, _vcpus.Length, Config.MemoryBytes >> 20, EffectiveCommandLine);
    }

    private static int SafeTscKhz(Vcpu vcpu)
    {
        try { return vcpu.GetTscKhz(); }
        catch (KvmException) { return 0; }
    }

    private IByteSink CreateSerialSink(SerialTarget target)
    {
        switch (target)
        {
            case SerialTarget.Stdio:
                return _life.Own(VmLevel.Devices, new StreamByteSink(Console.OpenStandardOutput(), ownsStream: true, _log, "stdout"));
            case SerialTarget.File f:
                try
                {
                    // A FIFO would block here until someone opens it for reading; a socket or directory cannot be written.
                    // Character devices (/dev/null, a tty) are fine.
                    if (FileKinds.Refusal(f.Path, "serial output file", "a regular file or a character device (use --serial stdio and a shell pipe)",
                            FileKind.Regular, FileKind.CharacterDevice) is { } why)
                        throw new VmConfigException(why);
                    // Unbuffered: every guest write reaches the file at once, and closing has nothing left to flush.
                    return _life.Own(VmLevel.Devices, new StreamByteSink(new FileStream(f.Path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0),
                        ownsStream: true, _log, f.Path));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new VmConfigException($"cannot open serial output file '{f.Path}': {e.Message}", e);
                }
            case SerialTarget.Callback c:
                return new CallbackByteSink(c.Write);
            default:
                return NullByteSink.Instance;
        }
    }

    /// <summary>Requests a stop; the first request's status wins. Safe from any thread. True for the first request.</summary>
    public bool RequestStop(VmExitStatus status)
    {
        if (Interlocked.CompareExchange(ref _stopping, 1, 0) != 0) return false;
        _exitStatus = status;
        Loop.Stop();
        return true;
    }

    public bool IsStopping => Volatile.Read(ref _stopping) != 0;

    /// <summary>
    /// Hands the VM an object that serves or watches its RAM (the snapshot file a page server reads, a dirty tracker, an
    /// upload), released after the vCPUs and devices have stopped and before guest RAM is unmapped.
    /// </summary>
    internal void Adopt(IDisposable owned) => _life.Own(VmLevel.MemoryBackend, owned);

    /// <summary>
    /// Hands the VM the backend of its RAM (once, before it runs). The VM owns it from here: disposed with what was
    /// adopted before it still alive (what it reads), after the vCPUs have stopped and before RAM is unmapped.
    /// </summary>
    internal void UseMemoryBackend(IGuestMemoryBackend backend)
    {
        if (_memoryBackend is not null) throw new InvalidOperationException("internal error: the VM already has a memory backend");
        _memoryBackend = _life.Own(VmLevel.MemoryBackend, backend);
    }

    /// <summary>Before a live snapshot: every page of RAM resident and no userfaultfd of the backend left on it.</summary>
    internal void MakeMemoryResident() => _memoryBackend?.MakeResident();

    /// <summary>Turns KVM dirty-page logging on or off by re-registering every memory slot with or without the flag.</summary>
    internal void SetDirtyLogging(bool enabled)
    {
        foreach (var region in Memory.Regions)
            region.MapInto(KvmVm, enabled ? MemorySlotFlags.LogDirtyPages : MemorySlotFlags.None);
    }

    private void OnVcpuExited(VcpuThread thread)
    {
        if (thread.Fault is { } fault)
            RequestStop(new VmExitStatus(VmStopReason.InternalError, Detail: $"vcpu{thread.Index}: {fault.Message}"));
    }

    /// <summary>
    /// Starts the vCPUs and runs the main loop on the calling thread until the VM stops. With <paramref name="paused"/>
    /// (QEMU's -S) the vCPU threads start held, before the first guest instruction, until <see cref="ResumeVcpus"/>.
    /// </summary>
    public VmExitStatus Run(bool paused = false)
    {
        StartStdinInput();
        ResumeVirtio(); // built paused: guest RAM is loaded now
        foreach (var t in _vcpuThreads) t.Start(paused);
        _memoryBackend?.GuestStarted();
        // Benchmarks read this line: CLOCK_MONOTONIC (Stopwatch's clock on Linux) when the guest may first execute.
        if (paused) _log.LogInformation("VM ready and paused: the monitor's cont starts it");
        else _log.LogInformation("vCPUs started at monotonic {Nanoseconds} ns",
            (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1e9 / System.Diagnostics.Stopwatch.Frequency)));
        Loop.Run();
        try { ShuttingDown?.Invoke(); }
        catch (Exception e) { _log.LogError(e, "shutdown hook failed"); }
        if (Loop.Failure is { } failure)
            RequestStop(new VmExitStatus(VmStopReason.InternalError, Detail: failure.Message));
        ReportLastConsoleLines();
        foreach (var t in _vcpuThreads) t.RequestStop();
        // A vCPU parked in a userfault on a page the lazy restore could not serve (corrupt file) would wait for ever:
        // with every vCPU already kicked (a stop is pending, so none re-enters the guest), release the range.
        _memoryBackend?.ReleaseFaultsAfterFailure();
        foreach (var t in _vcpuThreads) t.Stop(TimeSpan.FromSeconds(5));
        return _exitStatus ?? new VmExitStatus(VmStopReason.InternalError, Detail: "main loop ended without a stop request");
    }

    /// <summary>
    /// Pauses every vCPU (each out of KVM_RUN), then stops the virtio devices from taking requests and waits for the ones
    /// in flight, so guest RAM and device state hold still. Throws when either does not happen in time.
    /// </summary>
    public void PauseVcpus(TimeSpan timeout)
    {
        foreach (var t in _vcpuThreads)
            if (!t.Pause(timeout) && t.State != VcpuRunState.Stopped)
                throw new TimeoutException($"vcpu{t.Index} did not pause within {timeout.TotalMilliseconds} ms");
        QuiesceVirtio();
    }

    public void ResumeVcpus()
    {
        ResumeVirtio();
        foreach (var t in _vcpuThreads) t.Resume();
    }

    /// <summary>What <see cref="Dispose"/> would release now, in order (tests check the levels).</summary>
    internal IReadOnlyList<string> TeardownOrder() => _life.TeardownOrder();

    /// <summary>Releases the levels in reverse; a thread that did not stop leaves what it uses allocated (logged as an internal error).</summary>
    public void Dispose() => _life.Dispose();
}
