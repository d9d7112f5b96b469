using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Bus;
using MiniVmm.Core.Memory;
using MiniVmm.Core.State;
using MiniVmm.Devices.Virtio.Queue;

namespace MiniVmm.Devices.Virtio.Mmio;

/// <summary>Snapshot support: save while the device is quiesced; restore re-checks everything as guest input.</summary>
public sealed partial class VirtioMmioTransport : IPersistent<VirtioMmioTransport, VirtioMmioTransport.Wiring>
{
    /// <summary>What the VM wires a virtio-mmio device to (never part of its saved state).</summary>
    public sealed record Wiring(VirtioDevice Device, GuestMemory Memory, IInterruptLine Interrupt, ILogger? Logger);

    public static ushort StateVersion => 1;

    public static VirtioMmioTransport Create(Wiring args) => new(args.Device, args.Memory, args.Interrupt, args.Logger);

    public static VirtioMmioTransport RestoreState(Wiring args, ushort version, ReadOnlySpan<byte> state)
    {
        var transport = Create(args);
        transport.Restore(VirtioMmioState.Decode(args.Device.Name, state));
        return transport;
    }

    /// <summary>Encoded <see cref="Save"/>; the device must be quiesced (the VM quiesces it when it pauses).</summary>
    public byte[] SaveState() => Save().Encode();

    /// <summary>Captures the transport and ring positions. Call after <see cref="VirtioDevice.Quiesce"/>.</summary>
    public VirtioMmioState Save()
    {
        lock (_lock)
        {
            var live = Device.LiveQueues;
            var queues = ImmutableArray.CreateBuilder<VirtioQueueState>(_queues.Length);
            for (int i = 0; i < _queues.Length; i++)
            {
                var q = _queues[i];
                var running = i < live.Count ? live[i] : null;
                queues.Add(new VirtioQueueState(q.Size, q.Ready, q.Desc, q.Driver, q.Device,
                    running?.NextAvail ?? q.NextAvail, running?.NextUsed ?? q.NextUsed));
            }
            return new VirtioMmioState(Device.DeviceId, _status, _needsReset, _driverFeatures, _deviceFeaturesSel,
                _driverFeaturesSel, _queueSel, InterruptStatus, _configGeneration, queues.MoveToImmutable(),
                ImmutableArray.Create(Device.ConfigSnapshot()));
        }
    }

    /// <summary>
    /// Loads <paramref name="state"/> into this (fresh) transport and, when the driver was live, re-activates the
    /// device at the saved ring positions; the interrupt line is driven to the saved level.
    /// </summary>
    /// <exception cref="DeviceStateException">The state is impossible for this device or this guest RAM.</exception>
    public void Restore(VirtioMmioState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Validate(state);
        lock (_lock)
        {
            _status = state.Status;
            _needsReset = state.NeedsReset;
            _driverFeatures = state.DriverFeatures;
            _deviceFeaturesSel = state.DeviceFeaturesSel;
            _driverFeaturesSel = state.DriverFeaturesSel;
            _queueSel = state.QueueSel;
            _configGeneration = state.ConfigGeneration;
            for (int i = 0; i < _queues.Length; i++)
            {
                var s = state.Queues[i];
                _queues[i] = new QueueRegisters
                {
                    Size = s.Size, Ready = s.Ready, Desc = s.DescriptorTable, Driver = s.AvailableRing, Device = s.UsedRing,
                    NextAvail = s.NextAvail, NextUsed = s.NextUsed,
                };
            }
            lock (_irqLock)
            {
                _interruptStatus = state.InterruptStatus;
                _interrupt.SetLevel(_interruptStatus != 0);
            }
            if ((_status & VirtioStatus.DriverOk) != 0 && !_needsReset) ActivateLocked();
        }
    }

    private void Validate(VirtioMmioState s)
    {
        string name = Device.Name;
        if (s.DeviceId != Device.DeviceId) throw new DeviceStateException(name, $"device ID {s.DeviceId}, expected {Device.DeviceId}");
        if ((s.Status & ~VirtioStatus.DriverWritable) != 0) throw new DeviceStateException(name, $"status 0x{s.Status:x} has bits a driver cannot set");
        if ((s.DriverFeatures & ~Device.OfferedFeatures) != 0)
            throw new DeviceStateException(name, $"accepted features 0x{s.DriverFeatures:x} are not a subset of the offered 0x{Device.OfferedFeatures:x}");
        if ((s.Status & VirtioStatus.FeaturesOk) != 0 && (s.DriverFeatures & VirtioFeatures.Version1) == 0)
            throw new DeviceStateException(name, "FEATURES_OK without VERSION_1");
        if ((s.Status & VirtioStatus.DriverOk) != 0 && (s.Status & VirtioStatus.FeaturesOk) == 0)
            throw new DeviceStateException(name, "DRIVER_OK without FEATURES_OK");
        if (!s.DeviceConfig.IsDefault && !s.DeviceConfig.AsSpan().SequenceEqual(Device.ConfigSnapshot()))
            throw new DeviceStateException(name, "the device's configuration differs from the snapshot's (a drive image of another size?)");
        if ((s.InterruptStatus & ~3u) != 0) throw new DeviceStateException(name, $"interrupt status 0x{s.InterruptStatus:x} has unknown bits");
        if (s.Queues.IsDefault || s.Queues.Length != _queues.Length)
            throw new DeviceStateException(name, $"{(s.Queues.IsDefault ? 0 : s.Queues.Length)} queues, expected {_queues.Length}");
        for (int i = 0; i < s.Queues.Length; i++)
        {
            var q = s.Queues[i];
            if (q.Size == 0 || q.Size > Device.MaxQueueSize || (q.Size & (q.Size - 1)) != 0)
                throw new DeviceStateException(name, $"queue {i}: size {q.Size} is not a power of two in 1..{Device.MaxQueueSize}");
            if (!q.Ready) continue;
            if (new QueueLayout(q.Size, new GuestAddress(q.DescriptorTable), new GuestAddress(q.AvailableRing), new GuestAddress(q.UsedRing)).Check(Memory, Device.MaxQueueSize) is { } problem)
                throw new DeviceStateException(name, $"queue {i}: {problem}");
            if ((ushort)(q.NextAvail - q.NextUsed) > q.Size)
                throw new DeviceStateException(name, $"queue {i}: {q.NextAvail - q.NextUsed} chains in flight, more than the queue size");
        }
    }
}
