using KvmSharp.Interop;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Memory;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.State;

namespace MiniVmm.Machine.Snapshots;

/// <summary>The running VM as a snapshot engine sees it: pause/resume, state capture, memory, dirty log.</summary>
public sealed class VmSnapshotSource : ISnapshotSource
{
    private readonly Vm _vm;
    private readonly VcpuStateCapture _vcpuState;

    public VmSnapshotSource(Vm vm)
    {
        _vm = vm;
        _vcpuState = vm.StateCapture;
    }

    public static readonly TimeSpan PauseTimeout = TimeSpan.FromSeconds(2);

    public GuestMemory Memory => _vm.Memory;

    public string DescribeConfig() => Record(_vm).ToJson();

    internal static RecordedVmConfig Record(Vm vm) => new()
    {
        MemoryBytes = vm.Config.MemoryBytes,
        Vcpus = vm.Config.Vcpus,
        KernelPath = vm.Config.KernelPath,
        CommandLine = vm.EffectiveCommandLine,
        TscKhz = vm.TscKhz,
        HugePages = vm.Config.HugePages,
        Devices = ["serial-com1", "debug-exit", "i8042", "control"],
    };

    public void PrepareMemory()
    {
        if (_vm.LazyPages is not { } lazy) return;
        lazy.CompleteAndDetach();
        _vm.LazyPages = null;
    }

    public void Pause() => _vm.PauseVcpus(PauseTimeout);

    public IReadOnlyList<StateSection> CaptureState()
    {
        var sections = new List<StateSection>();
        foreach (var t in _vm.VcpuThreads)
            t.InvokePaused(v => { _vcpuState.Capture(v, sections); return 0; });
        sections.Add(new StateSection("vm.pic0", 1, AbiBytes.Of(_vm.KvmVm.GetIrqChip(Kvm.KVM_IRQCHIP_PIC_MASTER))));
        sections.Add(new StateSection("vm.pic1", 1, AbiBytes.Of(_vm.KvmVm.GetIrqChip(Kvm.KVM_IRQCHIP_PIC_SLAVE))));
        sections.Add(new StateSection("vm.ioapic", 1, AbiBytes.Of(_vm.KvmVm.GetIrqChip(Kvm.KVM_IRQCHIP_IOAPIC))));
        sections.Add(new StateSection("vm.pit2", 1, AbiBytes.Of(_vm.KvmVm.GetPit2())));
        sections.Add(new StateSection("vm.clock", 1, AbiBytes.Of(_vm.KvmVm.GetClock())));
        lock (_vm.SerialGate.Gate) sections.Add(new StateSection("dev.serial-com1", DeviceStateCodec.Version, DeviceStateCodec.Encode(_vm.Serial.Save())));
        lock (_vm.DebugExitGate.Gate) sections.Add(new StateSection("dev.debug-exit", DeviceStateCodec.Version, DeviceStateCodec.Encode(_vm.DebugExit.Save())));
        lock (_vm.ControlGate.Gate) sections.Add(new StateSection("dev.control", DeviceStateCodec.Version, DeviceStateCodec.Encode(_vm.Control.Save())));
        return sections;
    }

    public void ScheduleResume(Action onResumed) => _vm.Loop.Post(() =>
    {
        _vm.ResumeVcpus();
        onResumed();
    });

    public void Resume() => _vm.ResumeVcpus();

    public void SetDirtyLogging(bool enabled) => _vm.SetDirtyLogging(enabled);

    public void GetAndClearDirtyLog(int region, Span<ulong> bitmap) => _vm.KvmVm.GetDirtyLog((uint)region, bitmap);
}
