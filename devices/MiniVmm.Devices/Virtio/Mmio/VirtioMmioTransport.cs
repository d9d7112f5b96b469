using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Bus;
using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio.Queue;
using R = MiniVmm.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace MiniVmm.Devices.Virtio.Mmio;

/// <summary>
/// The virtio-mmio transport, version 2 (virtio 1.2 §4.2), as Linux's virtio_mmio driver uses it: feature selects,
/// the status state machine (FEATURES_OK only for a subset of the offered features with VERSION_1; out-of-order or
/// bit-clearing status writes set DEVICE_NEEDS_RESET), per-queue size/ready/addresses (checked against guest RAM when
/// a queue is made ready), QueueNotify, InterruptStatus/ACK, config generation and the device's config space.
/// </summary>
/// <remarks>Register accesses come from vCPU threads and take <c>_lock</c>; the device worker raises interrupts and
/// errors through a separate leaf lock, so a reset (transport lock, then device gate) cannot deadlock with a worker
/// (device gate, then interrupt lock).</remarks>
public sealed partial class VirtioMmioTransport : IBusDevice, IVirtioDeviceHost
{
    private readonly Lock _lock = new();
    private readonly Lock _irqLock = new();
    private readonly IInterruptLine _interrupt;
    private readonly RateLimitedLog _log;
    private readonly QueueRegisters[] _queues;
    private uint _deviceFeaturesSel;
    private uint _driverFeaturesSel;
    private ulong _driverFeatures;
    private uint _queueSel;
    private uint _status;
    private uint _configGeneration;
    private uint _interruptStatus;
    private volatile bool _needsReset;

    private sealed class QueueRegisters
    {
        public ushort Size;
        public bool Ready;
        public ulong Desc, Driver, Device;
        /// <summary>Ring positions to resume from (restore); zero for a fresh queue.</summary>
        public ushort NextAvail, NextUsed;
    }

    public VirtioMmioTransport(VirtioDevice device, GuestMemory memory, IInterruptLine interrupt, ILogger? logger = null)
    {
        Device = device;
        Memory = memory;
        _interrupt = interrupt;
        _log = new RateLimitedLog(logger ?? NullLogger.Instance);
        _queues = new QueueRegisters[device.QueueCount];
        for (int i = 0; i < _queues.Length; i++) _queues[i] = new QueueRegisters { Size = device.MaxQueueSize };
    }

    public VirtioDevice Device { get; }
    public GuestMemory Memory { get; }

    /// <summary>The status register as the driver reads it.</summary>
    public uint Status { get { lock (_lock) return CurrentStatus(); } }

    public uint InterruptStatus { get { lock (_irqLock) return _interruptStatus; } }

    private uint CurrentStatus() => _status | (_needsReset ? VirtioStatus.DeviceNeedsReset : 0);

    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (offset >= R.Config)
        {
            if (offset - R.Config < R.WindowSize) Device.ReadConfig((uint)(offset - R.Config), data);
            return;
        }
        if (data.Length != 4 || offset % 4 != 0)
        {
            if (_log.TryTake(out long suppressed)) _log.Write(Device.Name, $"ignored a {data.Length}-byte read of register 0x{offset:x} (registers are 32-bit)", suppressed);
            return;
        }
        uint value;
        lock (_lock) value = ReadRegister((uint)offset);
        BinaryPrimitives.WriteUInt32LittleEndian(data, value);
    }

    private uint ReadRegister(uint offset)
    {
        switch (offset)
        {
            case R.MagicValue: return R.Magic;
            case R.Version: return R.CurrentVersion;
            case R.DeviceId: return Device.DeviceId;
            case R.VendorId: return R.MiniVmmVendor;
            case R.DeviceFeatures:
                return _deviceFeaturesSel switch
                {
                    0 => (uint)Device.OfferedFeatures,
                    1 => (uint)(Device.OfferedFeatures >> 32),
                    _ => 0,
                };
            case R.QueueNumMax: return SelectedQueue() is not null ? Device.MaxQueueSize : 0u;
            case R.QueueReady: return SelectedQueue() is { Ready: true } ? 1u : 0u;
            case R.InterruptStatus: lock (_irqLock) return _interruptStatus;
            case R.Status: return CurrentStatus();
            case R.ShmLenLow or R.ShmLenHigh: return 0xffff_ffff; // no shared memory regions
            case R.ShmBaseLow or R.ShmBaseHigh: return 0xffff_ffff;
            case R.ConfigGeneration: return _configGeneration;
            default: return 0;
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= R.Config)
        {
            if (offset - R.Config < R.WindowSize)
                lock (_lock) Device.WriteConfig((uint)(offset - R.Config), data);
            return;
        }
        if (data.Length != 4 || offset % 4 != 0)
        {
            if (_log.TryTake(out long suppressed)) _log.Write(Device.Name, $"ignored a {data.Length}-byte write of register 0x{offset:x} (registers are 32-bit)", suppressed);
            return;
        }
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(data);
        if (offset == R.QueueNotify)
        {
            // No lock: the doorbell is thread-safe and the worker re-checks the device state itself.
            if ((Status & VirtioStatus.DriverOk) != 0 && value < _queues.Length) Device.Notify((int)value);
            return;
        }
        if (offset == R.InterruptAck)
        {
            lock (_irqLock)
            {
                _interruptStatus &= ~value;
                if (_interruptStatus == 0) _interrupt.SetLevel(false);
            }
            return;
        }
        lock (_lock) WriteRegister((uint)offset, value);
    }

    private void WriteRegister(uint offset, uint value)
    {
        switch (offset)
        {
            case R.DeviceFeaturesSel: _deviceFeaturesSel = value; break;
            case R.DriverFeaturesSel: _driverFeaturesSel = value; break;
            case R.DriverFeatures:
                if ((_status & (VirtioStatus.Driver | VirtioStatus.FeaturesOk)) != VirtioStatus.Driver)
                {
                    DriverError($"driver features written in status 0x{_status:x} (only after DRIVER, before FEATURES_OK)");
                    break;
                }
                if (_driverFeaturesSel == 0) _driverFeatures = (_driverFeatures & ~0xffff_ffffUL) | value;
                else if (_driverFeaturesSel == 1) _driverFeatures = (_driverFeatures & 0xffff_ffffUL) | ((ulong)value << 32);
                break;
            case R.QueueSel: _queueSel = value; break;
            case R.QueueNum:
                if (EditableQueue("QueueNum") is { } qn)
                {
                    if (value == 0 || value > Device.MaxQueueSize || (value & (value - 1)) != 0)
                        DriverError($"queue {_queueSel}: size {value} is not a power of two in 1..{Device.MaxQueueSize}");
                    else
                        qn.Size = (ushort)value;
                }
                break;
            case R.QueueReady:
                if (EditableQueue("QueueReady") is { } qr)
                {
                    if (value == 0) { qr.Ready = false; break; }
                    var layout = new QueueLayout(qr.Size, new GuestAddress(qr.Desc), new GuestAddress(qr.Driver), new GuestAddress(qr.Device));
                    if (layout.Check(Memory, Device.MaxQueueSize) is { } problem)
                        DriverError($"queue {_queueSel}: {problem}");
                    else
                        qr.Ready = true;
                }
                break;
            case R.Status: WriteStatus(value); break;
            case R.QueueDescLow: if (EditableQueue("QueueDescLow") is { } a) a.Desc = Low(a.Desc, value); break;
            case R.QueueDescHigh: if (EditableQueue("QueueDescHigh") is { } b) b.Desc = High(b.Desc, value); break;
            case R.QueueDriverLow: if (EditableQueue("QueueDriverLow") is { } c) c.Driver = Low(c.Driver, value); break;
            case R.QueueDriverHigh: if (EditableQueue("QueueDriverHigh") is { } d) d.Driver = High(d.Driver, value); break;
            case R.QueueDeviceLow: if (EditableQueue("QueueDeviceLow") is { } e) e.Device = Low(e.Device, value); break;
            case R.QueueDeviceHigh: if (EditableQueue("QueueDeviceHigh") is { } f) f.Device = High(f.Device, value); break;
            case R.ShmSel: break;
            default:
                if (_log.TryTake(out long suppressed)) _log.Write(Device.Name, $"ignored a write of 0x{value:x} to read-only or unknown register 0x{offset:x}", suppressed);
                break;
        }
    }

    private static ulong Low(ulong old, uint value) => (old & ~0xffff_ffffUL) | value;
    private static ulong High(ulong old, uint value) => (old & 0xffff_ffffUL) | ((ulong)value << 32);

    private QueueRegisters? SelectedQueue() => _queueSel < _queues.Length ? _queues[_queueSel] : null;

    /// <summary>The selected queue when its registers may change: it exists, is not ready, and the driver is set up
    /// but not yet live (virtio 1.2 §4.2.3.2).</summary>
    private QueueRegisters? EditableQueue(string register)
    {
        var q = SelectedQueue();
        if (q is null) { DriverError($"{register} written for queue {_queueSel}, which does not exist"); return null; }
        if ((_status & VirtioStatus.DriverOk) != 0) { DriverError($"{register} written for queue {_queueSel} after DRIVER_OK"); return null; }
        if (q.Ready && register != "QueueReady") { DriverError($"{register} written for queue {_queueSel} while it is ready"); return null; }
        return q;
    }

    private void WriteStatus(uint value)
    {
        if (value == 0)
        {
            ResetLocked();
            return;
        }
        uint old = _status;
        if ((value & ~VirtioStatus.DriverWritable) != 0 || (value & old) != old)
        {
            DriverError($"status 0x{value:x} after 0x{old:x}: a driver may only add bits it is allowed to write");
            return;
        }
        uint added = value & ~old;
        if ((added & VirtioStatus.Driver) != 0 && (value & VirtioStatus.Acknowledge) == 0 ||
            (added & VirtioStatus.FeaturesOk) != 0 && (value & VirtioStatus.Driver) == 0 ||
            (added & VirtioStatus.DriverOk) != 0 && (value & VirtioStatus.FeaturesOk) == 0)
        {
            DriverError($"status 0x{value:x} after 0x{old:x} skips a step of the initialization sequence");
            return;
        }
        if ((added & VirtioStatus.FeaturesOk) != 0)
        {
            ulong unknown = _driverFeatures & ~Device.OfferedFeatures;
            if (unknown != 0 || (_driverFeatures & VirtioFeatures.Version1) == 0)
            {
                // Not an error: the driver reads FEATURES_OK back and sees it refused.
                _log.Warn(Device.Name, $"refused features 0x{_driverFeatures:x} (offered 0x{Device.OfferedFeatures:x}; VERSION_1 is required)");
                value &= ~VirtioStatus.FeaturesOk;
            }
        }
        _status = value;
        if ((added & VirtioStatus.DriverOk) != 0) ActivateLocked();
    }

    private void ActivateLocked()
    {
        var queues = new SplitQueue?[_queues.Length];
        for (int i = 0; i < _queues.Length; i++)
        {
            var q = _queues[i];
            if (!q.Ready)
            {
                if (Device.RequiresQueue(i)) { DriverError($"DRIVER_OK with queue {i} not ready"); return; }
                continue;
            }
            try
            {
                queues[i] = new SplitQueue(Memory, new QueueLayout(q.Size, new GuestAddress(q.Desc), new GuestAddress(q.Driver), new GuestAddress(q.Device)), Device.MaxQueueSize,
                    eventIndex: (_driverFeatures & VirtioFeatures.RingEventIdx) != 0,
                    indirect: (_driverFeatures & VirtioFeatures.RingIndirectDesc) != 0,
                    nextAvail: q.NextAvail, nextUsed: q.NextUsed);
            }
            catch (VirtqueueException e)
            {
                DriverError($"queue {i}: {e.Message}");
                return;
            }
        }
        Device.Activate(this, queues, _driverFeatures);
    }

    private void ResetLocked()
    {
        Device.Reset();
        _status = 0;
        _needsReset = false;
        _driverFeatures = 0;
        _deviceFeaturesSel = _driverFeaturesSel = _queueSel = 0;
        for (int i = 0; i < _queues.Length; i++) _queues[i] = new QueueRegisters { Size = Device.MaxQueueSize };
        lock (_irqLock)
        {
            _interruptStatus = 0;
            _interrupt.SetLevel(false);
        }
    }

    /// <summary>A register-level driver error (called under <c>_lock</c>).</summary>
    private void DriverError(string message) => DeviceError(message);

    void IVirtioDeviceHost.SignalUsedBuffers() => RaiseInterrupt(R.InterruptUsedBuffer);

    /// <summary>Enters DEVICE_NEEDS_RESET; if the driver is live it gets a configuration-change interrupt.</summary>
    public void DeviceError(string message)
    {
        if (_log.TryTake(out long suppressed)) _log.Write(Device.Name, message + "; device needs reset", suppressed);
        bool wasSet = _needsReset;
        _needsReset = true;
        // _status is only read here: a torn read can at worst skip this one interrupt.
        if (!wasSet && (Volatile.Read(ref _status) & VirtioStatus.DriverOk) != 0) RaiseInterrupt(R.InterruptConfigChange);
    }

    /// <summary>Device configuration changed: bump the generation and tell the driver.</summary>
    public void ConfigChanged()
    {
        lock (_lock) _configGeneration++;
        RaiseInterrupt(R.InterruptConfigChange);
    }

    private void RaiseInterrupt(uint bits)
    {
        lock (_irqLock)
        {
            _interruptStatus |= bits;
            _interrupt.SetLevel(true);
        }
    }
}
