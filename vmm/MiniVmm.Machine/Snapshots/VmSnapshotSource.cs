using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Core.Memory;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Machine.Snapshots;

/// <summary>The running VM as a snapshot engine sees it: pause/resume, state capture, memory, dirty log.</summary>
public sealed class VmSnapshotSource : ISnapshotSource
{
    private readonly Vm _vm;

    public VmSnapshotSource(Vm vm)
    {
        _vm = vm;
    }

    public static readonly TimeSpan PauseTimeout = TimeSpan.FromSeconds(2);

    public GuestMemory Memory => _vm.Memory;

    public string DescribeConfig() => Record(_vm).ToJson();

    internal static RecordedVmConfig Record(Vm vm) => new()
    {
        MemoryBytes = vm.Config.MemoryBytes,
        Vcpus = vm.Config.Vcpus,
        KernelPath = vm.Config.KernelPath,
        InitrdPath = vm.Config.InitrdPath,
        CommandLine = vm.EffectiveCommandLine,
        UserCommandLine = vm.Config.UserCommandLine ?? vm.Config.CommandLine,
        TscKhz = vm.TscKhz,
        HugePages = vm.Config.HugePages,
        Devices = [.. vm.Devices.Ids],
        Drives = [.. vm.Config.Drives.Select(d => new RecordedDrive(d.Path, d.ReadOnly, DriveSpec.CacheName(d.Cache)))],
        Rng = vm.Config.Rng,
        Nets = [.. vm.Config.Nets.Select((n, i) => new RecordedNet(n.Tap, n.MacFor(i).ToString()))],
    };

    public void PrepareMemory()
    {
        _vm.MakeMemoryResident();
    }

    public void Pause() => _vm.PauseVcpus(PauseTimeout);

    /// <summary>The drive capture of the snapshot in progress (null: none), started at the freeze with the state capture.</summary>
    internal DriveSnapshot? Drives { get; set; }

    public IReadOnlyList<StateSection> CaptureState()
    {
        var sections = VmStateSections.ToSections(Capture(_vm));
        // Still paused, devices quiesced: the drives' content is of the same instant as the RAM the engine freezes now.
        Drives?.Begin();
        return sections;
    }

    /// <summary>The whole VM state, read while the vCPUs are paused (each device under its lock: the main loop runs).</summary>
    internal static VmState Capture(Vm vm)
    {
        var vcpus = new VcpuState[vm.VcpuThreads.Count];
        foreach (var t in vm.VcpuThreads)
            vcpus[t.Index] = t.InvokePaused(v => vm.StateCapture.Capture(v));
        return new VmState(vcpus, KvmVmStateCapture.Capture(vm.KvmVm), vm.Devices.Save());
    }

    public void ScheduleResume(Action onResumed) => _vm.Loop.Post(() =>
    {
        _vm.ResumeVcpus();
        onResumed();
    });

    public void Resume() => _vm.ResumeVcpus();

    public void SetDirtyLogging(bool enabled)
    {
        // Device (virtio) writes into guest RAM are not in KVM's log: GuestMemory logs them alongside.
        if (enabled) _vm.Memory.StartHostWriteLog();
        _vm.SetDirtyLogging(enabled);
        if (!enabled) _vm.Memory.StopHostWriteLog();
    }

    public void GetAndClearDirtyLog(int region, Span<ulong> bitmap)
    {
        _vm.KvmVm.GetDirtyLog((uint)region, bitmap);
        _vm.Memory.TakeHostWrites(region, bitmap);
    }
}
