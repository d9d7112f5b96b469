using MiniVmm.Core.Bus;
using MiniVmm.Core.State;
using MiniVmm.Machine.State;

namespace MiniVmm.Machine.Devices;

/// <summary>
/// Builds, maps and snapshots the VM's devices. Every device is added through it, once, with its id and its constructor
/// arguments: on boot it is created fresh (<see cref="IPersistent{TSelf,TArgs}.Create"/>), on restore rebuilt from its
/// section (<see cref="IPersistent{TSelf,TArgs}.RestoreState"/>) — the same line builds both. A bus device must be
/// persistent or declared <see cref="IStateless"/>; the manager serializes each device behind its own lock
/// (<see cref="SerializedDevice"/>) and saves it under that lock.
/// </summary>
/// <remarks>
/// On restore the manager is handed the snapshot's device states. It refuses (<see cref="StateRestoreException"/>,
/// naming the section) a state of a version the device does not read, one the device rejects, a persistent device
/// without a state (unless the device declares <see cref="IPersistent{TSelf,TArgs}.CreatedFreshWhenAbsent"/>: then
/// it is created fresh, as on boot), and — in <see cref="Complete"/> — a state for a device this VM does not have.
/// </remarks>
public sealed class DeviceManager
{
    private readonly Bus _pio;
    private readonly Bus _mmio;
    private readonly Dictionary<string, DeviceState>? _restored;
    private readonly List<Entry> _entries = [];
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
    private bool _complete;

    private sealed record Entry(string Id, object Device, Lock Gate, IPersistent? Persistent, ushort Version, string? StatelessReason);

    /// <param name="restored">The snapshot's device states when restoring; null on boot.</param>
    public DeviceManager(Bus pio, Bus mmio, IReadOnlyList<DeviceState>? restored)
    {
        _pio = pio;
        _mmio = mmio;
        if (restored is not null)
        {
            _restored = new Dictionary<string, DeviceState>(StringComparer.Ordinal);
            foreach (var d in restored)
                if (!_restored.TryAdd(d.Id, d))
                    throw new StateRestoreException($"the snapshot has section '{VmStateSections.Device(d.Id)}' twice");
        }
    }

    /// <summary>True when the devices are being rebuilt from a snapshot.</summary>
    public bool IsRestoring => _restored is not null;

    /// <summary>Adds a persistent device on the PIO bus at <c>[port, port + length)</c>.</summary>
    public TDevice AddPio<TDevice, TArgs>(string id, ulong port, ulong length, TArgs args)
        where TDevice : class, IBusDevice, IPersistent<TDevice, TArgs> =>
        Map(_pio, port, length, Add<TDevice, TArgs>(id, args));

    /// <summary>Adds a persistent device on the MMIO bus at <c>[address, address + length)</c>.</summary>
    public TDevice AddMmio<TDevice, TArgs>(string id, ulong address, ulong length, TArgs args)
        where TDevice : class, IBusDevice, IPersistent<TDevice, TArgs> =>
        Map(_mmio, address, length, Add<TDevice, TArgs>(id, args));

    /// <summary>Adds a device declared stateless on the PIO bus; <paramref name="device"/> is built the same way on
    /// boot and restore.</summary>
    public TDevice AddStatelessPio<TDevice>(string id, ulong port, ulong length, TDevice device)
        where TDevice : class, IBusDevice, IStateless =>
        Map(_pio, port, length, AddStateless(id, device));

    /// <summary>Adds a device declared stateless on the MMIO bus.</summary>
    public TDevice AddStatelessMmio<TDevice>(string id, ulong address, ulong length, TDevice device)
        where TDevice : class, IBusDevice, IStateless =>
        Map(_mmio, address, length, AddStateless(id, device));

    /// <summary>
    /// Adds a persistent component that is not itself on a bus (it may map parts of itself through
    /// <see cref="Register"/>): created or restored exactly like a bus device.
    /// </summary>
    public TDevice Add<TDevice, TArgs>(string id, TArgs args) where TDevice : class, IPersistent<TDevice, TArgs>
    {
        CheckNewId(id);
        TDevice device;
        if (_restored is null)
        {
            device = TDevice.Create(args);
        }
        else
        {
            string section = VmStateSections.Device(id);
            if (!_restored.Remove(id, out var saved))
            {
                if (!TDevice.CreatedFreshWhenAbsent)
                    throw new StateRestoreException($"the snapshot has no section '{section}'");
                device = TDevice.Create(args);
            }
            else
            {
                device = RestoreFrom<TDevice, TArgs>(section, saved, args);
            }
        }
        _entries.Add(new Entry(id, device, new Lock(), device, TDevice.StateVersion, null));
        return device;
    }

    private static TDevice RestoreFrom<TDevice, TArgs>(string section, DeviceState saved, TArgs args)
        where TDevice : class, IPersistent<TDevice, TArgs>
    {
        if (saved.Version < TDevice.OldestStateVersion || saved.Version > TDevice.StateVersion)
            throw new StateRestoreException($"section '{section}' has version {saved.Version}; this MiniVmm reads {VersionRange<TDevice, TArgs>()}");
        try
        {
            return TDevice.RestoreState(args, saved.Version, saved.Data);
        }
        catch (PersistentStateException e)
        {
            throw new StateRestoreException($"section '{section}': {e.Message}", e);
        }
    }

    /// <summary>
    /// Maps <paramref name="device"/> (added before, persistent or stateless) on a bus behind the lock it is saved
    /// under. A device may be mapped more than once (several windows).
    /// </summary>
    public void Register(BusKind bus, ulong address, ulong length, IBusDevice device, string name)
    {
        var entry = EntryOf(device);
        (bus == BusKind.Pio ? _pio : _mmio).Register(address, length, new SerializedDevice(device, entry.Gate), name);
    }

    /// <summary>The lock that serializes <paramref name="device"/> (host-side calls such as serial input take it).</summary>
    public Lock GateOf(object device) => EntryOf(device).Gate;

    /// <summary>Ids of every device added, in order.</summary>
    public IReadOnlyList<string> Ids => _entries.Select(e => e.Id).ToArray();

    /// <summary>
    /// How the snapshot treats <paramref name="device"/> (a device registered on a bus; its <see cref="SerializedDevice"/>
    /// wrapper is seen through): "section 'dev.ID'", "stateless: REASON", or null for a device the manager never added.
    /// </summary>
    public string? Describe(IBusDevice device)
    {
        object inner = device is SerializedDevice s ? s.Inner : device;
        var entry = _entries.Find(e => ReferenceEquals(e.Device, inner));
        if (entry is null) return null;
        return entry.Persistent is not null ? $"section '{VmStateSections.Device(entry.Id)}'" : $"stateless: {entry.StatelessReason}";
    }

    /// <summary>
    /// Ends the building phase. On restore, a saved state left over belongs to a device this VM does not have: refused.
    /// </summary>
    public void Complete()
    {
        _complete = true;
        if (_restored is { Count: > 0 })
            throw new StateRestoreException(
                $"section '{VmStateSections.Device(_restored.Keys.Order(StringComparer.Ordinal).First())}' belongs to no device of this VM");
    }

    /// <summary>Every persistent device's state, each taken under its lock. Call with the vCPUs paused.</summary>
    public IReadOnlyList<DeviceState> Save()
    {
        var states = new List<DeviceState>(_entries.Count);
        foreach (var e in _entries)
        {
            if (e.Persistent is null) continue;
            byte[] data;
            lock (e.Gate) data = e.Persistent.SaveState();
            states.Add(new DeviceState(e.Id, e.Version, data));
        }
        return states;
    }

    private TDevice AddStateless<TDevice>(string id, TDevice device) where TDevice : class, IStateless
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckNewId(id);
        _entries.Add(new Entry(id, device, new Lock(), null, 0, TDevice.StatelessReason));
        return device;
    }

    private TDevice Map<TDevice>(Bus bus, ulong address, ulong length, TDevice device) where TDevice : class, IBusDevice
    {
        var entry = EntryOf(device);
        bus.Register(address, length, new SerializedDevice(device, entry.Gate), entry.Id);
        return device;
    }

    private Entry EntryOf(object device) =>
        _entries.Find(e => ReferenceEquals(e.Device, device))
        ?? throw new InvalidOperationException("the device was not added to the device manager");

    private void CheckNewId(string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        if (_complete) throw new InvalidOperationException($"device '{id}' added after the VM was built");
        if (id.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            throw new ArgumentException($"device id '{id}' may hold only ASCII letters, digits, '-' and '_'", nameof(id));
        if (!_ids.Add(id)) throw new ArgumentException($"device id '{id}' is already used", nameof(id));
    }

    private static string VersionRange<TDevice, TArgs>() where TDevice : class, IPersistent<TDevice, TArgs> =>
        TDevice.OldestStateVersion == TDevice.StateVersion
            ? $"version {TDevice.StateVersion}"
            : $"versions {TDevice.OldestStateVersion}-{TDevice.StateVersion}";
}
