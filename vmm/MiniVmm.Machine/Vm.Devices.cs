using MiniVmm.Devices;
using MiniVmm.Devices.Legacy;
using MiniVmm.Machine.Devices;
using MiniVmm.Machine.State;

namespace MiniVmm.Machine;

/// <summary>
/// The VM's device list. Boot and restore run these same lines: the device manager creates each device fresh or
/// rebuilds it from its snapshot section. A new device is its folder under devices/ plus one line here.
/// </summary>
public sealed partial class Vm
{
    /// <summary>Builds, maps and snapshots every device.</summary>
    public DeviceManager Devices { get; }

    public Serial8250 Serial { get; private set; } = null!;
    public ControlPort Control { get; private set; } = null!;
    public DebugExitPort DebugExit { get; private set; } = null!;

    private DeviceManager BuildDevices(IReadOnlyList<DeviceState>? restored, IByteSink serialSink, Microsoft.Extensions.Logging.ILoggerFactory loggers)
    {
        var devices = new DeviceManager(Pio, Mmio, restored);
        Serial = devices.AddPio<Serial8250, Serial8250.Wiring>("serial-com1", Serial8250.Com1Port, Serial8250.RegisterWindowSize,
            new(serialSink, new KvmInterruptLine(KvmVm, Serial8250.Com1Irq), () => Loop.Post(WatchStdin)));
        DebugExit = devices.AddPio<DebugExitPort, Action<uint>>("debug-exit", DebugExitPort.DefaultPort, DebugExitPort.RegisterWindowSize,
            v => RequestStop(new VmExitStatus(VmStopReason.GuestExit, v)));
        devices.AddPio<I8042, Action>("i8042", I8042.DefaultPort, I8042.RegisterWindowSize,
            () => RequestStop(new VmExitStatus(VmStopReason.Reset, Detail: "guest requested a reset through the i8042")));
        devices.AddPio<CmosRtc, TimeProvider>("rtc-cmos", CmosRtc.DefaultPort, CmosRtc.RegisterWindowSize, TimeProvider.System);
        Control = devices.AddPio<ControlPort, Action>("control", ControlPort.DefaultPort, ControlPort.RegisterWindowSize,
            () => GuestSnapshotRequested?.Invoke());
        AddVirtioDevices(devices, loggers);
        devices.Complete();
        return devices;
    }
}
