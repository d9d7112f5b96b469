using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Bus;
using MiniVmm.Devices.Virtio;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Devices.Virtio.Mmio;
using MiniVmm.Devices.Virtio.Net;
using MiniVmm.Devices.Virtio.Rng;
using MiniVmm.Machine.Devices;

namespace MiniVmm.Machine;

/// <summary>
/// virtio-mmio devices: one 4 KiB window each at <see cref="VirtioMmioBase"/> + i·4 KiB (in the 32-bit hole above the
/// largest RAM MiniVmm supports), IOAPIC pin <see cref="VirtioFirstGsi"/> + i, in the order drives first, then the rng,
/// then the network devices.
/// QueueNotify is a KVM ioeventfd that wakes the device's worker; interrupts go through an irqfd. Each device is
/// announced to Linux as <c>virtio_mmio.device=4K@ADDR:IRQ</c> on the command line.
/// </summary>
public sealed partial class Vm
{
    public const ulong VirtioMmioBase = 0xd000_0000;
    /// <summary>GSIs 16-23 are IOAPIC-only pins: no clash with the ISA IRQs of the legacy devices.</summary>
    public const uint VirtioFirstGsi = 16;
    public const int MaxVirtioDevices = 8;

    private readonly List<VirtioDevice> _virtio = new();
    private readonly List<string> _virtioAnnouncements = new();
    /// <summary>The same devices for the ACPI DSDT of a Linux boot.</summary>
    private readonly List<Core.Boot.Acpi.VirtioMmioWindow> _virtioWindows = new();

    /// <summary>The virtio devices in slot order.</summary>
    public IReadOnlyList<VirtioDevice> VirtioDevices => _virtio;

    /// <summary>How long a pause waits for a device's request in flight (a disk write) before it fails.</summary>
    public static readonly TimeSpan VirtioQuiesceTimeout = TimeSpan.FromSeconds(5);

    private void AddVirtioDevices(DeviceManager devices, ILoggerFactory loggers)
    {
        int slots = Config.Drives.Count + (Config.Rng ? 1 : 0) + Config.Nets.Count;
        if (slots > MaxVirtioDevices)
            throw new VmConfigException($"{slots} virtio devices requested; at most {MaxVirtioDevices} are supported");
        var log = loggers.CreateLogger("MiniVmm.Virtio");
        for (int i = 0; i < Config.Drives.Count; i++)
        {
            var spec = Config.Drives[i];
            string name = $"virtio-blk{i}";
            // A FIFO would block the open for ever, and a socket or device is no disk: the path may come from a snapshot.
            if (FileKinds.Refusal(spec.Path, "drive", "a regular file or a block device", FileKind.Regular, FileKind.BlockDevice) is { } why)
                throw new VmConfigException(why);
            RawImage image;
            try
            {
                image = RawImage.Open(spec, FallocateFileSpace.Instance, (path, readOnly) => OpenDirect(path, readOnly, log));
            }
            catch (DriveException e) { throw new VmConfigException(e.Message, e); }
            AddVirtio(devices, name, doorbell => new VirtioBlock(image, name, doorbell, log, startPaused: true), log, image);
        }
        if (Config.Rng)
            AddVirtio(devices, "virtio-rng", doorbell => new VirtioRng(GetRandomEntropy.Instance, doorbell, "virtio-rng", startPaused: true), log, null);
        for (int i = 0; i < Config.Nets.Count; i++)
        {
            var spec = Config.Nets[i];
            string name = $"virtio-net{i}";
            TapDevice tap;
            try
            {
                // On restore the tap is reopened by name: the interface must exist again (the guest's MAC and
                // offloads come back from the snapshot).
                tap = TapDevice.Open(spec.Tap);
            }
            catch (TapException e) { throw new VmConfigException($"--net tap={spec.Tap}: {e.Message}", e); }
            var mac = spec.MacFor(i);
            // With an ioeventfd the worker's own epoll also watches the tap, so neither a watcher thread nor the
            // backend's own epoll is needed. The tap is the backend's (and so the device's) once they are built.
            AddVirtio(devices, name, doorbell =>
            {
                bool watch = doorbell is not EpollDoorbell;
                return new VirtioNet(new TapNetBackend(tap, watch), mac, name, doorbell, log, startPaused: true, watchBackend: watch);
            }, log, tap, wakeAlsoOn: tap);
            log.LogInformation("{Device}: tap {Tap}, MAC {Mac}, receive offloads {Offloads}", name, spec.Tap, mac,
                tap.SupportsGuestOffloads ? "available" : "unavailable");
        }
    }

    private static Microsoft.Win32.SafeHandles.SafeFileHandle? OpenDirect(string path, bool readOnly, ILogger log)
    {
        var handle = HostIo.TryOpenDirect(path, readOnly, out Errno errno);
        if (handle is null)
            log.LogWarning("drive '{Path}': the host file system refuses O_DIRECT ({Errno}); cache=none uses the page cache", path, errno);
        return handle;
    }

    /// <param name="wakeAlsoOn">An fd whose readability should wake the device worker too (a tap).</param>
    private void AddVirtio(DeviceManager devices, string id, Func<IVirtioDoorbell, VirtioDevice> create, ILogger log, IDisposable? ownedUntilDevice,
        IPollable? wakeAlsoOn = null)
    {
        int slot = _virtio.Count;
        ulong address = VirtioMmioBase + (ulong)slot * VirtioMmioRegisters.WindowSize;
        uint gsi = VirtioFirstGsi + (uint)slot;
        // Ownership order matters: a level is released last-acquired first, so the device (its worker joined) goes
        // before the irqfd and the ioeventfd it uses.
        VirtioDevice device;
        IInterruptLine line;
        try
        {
            IVirtioDoorbell doorbell;
            try
            {
                var kick = KvmVm.CreateIoEventFd(address + VirtioMmioRegisters.QueueNotify, 4);
                IVirtioDoorbell ioeventfd;
                try { ioeventfd = wakeAlsoOn is null ? new IoEventFdDoorbell(kick) : new EpollDoorbell(kick, wakeAlsoOn); }
                catch { kick.Dispose(); throw; }
                _life.Own(VmLevel.Devices, (IDisposable)ioeventfd);
                doorbell = ioeventfd;
            }
            catch (LinuxException e)
            {
                log.LogWarning("{Device}: no ioeventfd ({Error}); queue notifications exit to user space", id, e.Message);
                doorbell = _life.Own(VmLevel.Devices, new ManagedDoorbell());
            }
            try
            {
                line = _life.Own(VmLevel.Devices, new IrqFdInterruptLine(KvmVm.CreateIrqFd(gsi)));
            }
            catch (LinuxException e)
            {
                log.LogWarning("{Device}: no irqfd ({Error}); interrupts use KVM_IRQ_LINE", id, e.Message);
                line = new KvmInterruptLine(KvmVm, gsi);
            }
            device = create(doorbell);
        }
        catch
        {
            ownedUntilDevice?.Dispose();
            throw;
        }
        _life.Own(VmLevel.Devices, device);
        devices.AddMmio<VirtioMmioTransport, VirtioMmioTransport.Wiring>(id, address, VirtioMmioRegisters.WindowSize,
            new(device, Memory, line, log));
        _virtio.Add(device);
        _virtioAnnouncements.Add($"virtio_mmio.device=4K@0x{address:x}:{gsi}");
        _virtioWindows.Add(new(address, (uint)VirtioMmioRegisters.WindowSize, gsi));
        log.LogInformation("{Device} at MMIO 0x{Address:x}, IRQ {Gsi}", id, address, gsi);
    }

    /// <summary>Stops every virtio device from taking requests and waits for the ones in flight.</summary>
    private void QuiesceVirtio()
    {
        foreach (var d in _virtio)
            if (!d.Quiesce(VirtioQuiesceTimeout))
                throw new TimeoutException($"{d.Name} did not finish its request in flight within {VirtioQuiesceTimeout.TotalSeconds} s");
    }

    private void ResumeVirtio()
    {
        foreach (var d in _virtio) d.Resume();
    }
}
