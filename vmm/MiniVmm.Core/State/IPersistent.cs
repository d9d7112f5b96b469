namespace MiniVmm.Core.State;

/// <summary>
/// A component whose guest-visible state goes into a snapshot (Firecracker's <c>Persist</c>, Cloud Hypervisor's
/// <c>Snapshottable</c>). The component owns its encoding: <see cref="SaveState"/> writes its state record as bytes in
/// the encoding <see cref="IPersistent{TSelf,TArgs}.StateVersion"/> names. The VM's device manager stores those bytes
/// in a section named after the component's id and never looks inside.
/// </summary>
public interface IPersistent
{
    /// <summary>The state as bytes. Called while the vCPUs are paused, under the lock that serializes the device.</summary>
    byte[] SaveState();
}

/// <summary>
/// The static half of the contract: how a component of type <typeparamref name="TSelf"/> is built, for boot
/// (<see cref="Create"/>) and for restore (<see cref="RestoreState"/>), from the same constructor arguments
/// <typeparamref name="TArgs"/> (its wiring: sinks, interrupt lines, callbacks). The device manager calls one or the
/// other, so boot and restore build the device through the same path.
/// </summary>
/// <typeparam name="TSelf">The component type.</typeparam>
/// <typeparam name="TArgs">Its constructor arguments: what the VM wires it to (never part of the saved state).</typeparam>
public interface IPersistent<TSelf, TArgs> : IPersistent where TSelf : class, IPersistent<TSelf, TArgs>
{
    /// <summary>The encoding version <see cref="IPersistent.SaveState"/> writes. Bump it when the encoding changes.</summary>
    static abstract ushort StateVersion { get; }

    /// <summary>The oldest encoding <see cref="RestoreState"/> still reads (default: only the current one). A section of
    /// any version outside <c>[OldestStateVersion, StateVersion]</c> is refused before <see cref="RestoreState"/> runs.</summary>
    static virtual ushort OldestStateVersion => TSelf.StateVersion;

    /// <summary>
    /// Whether a restore from a snapshot that has no section for this component builds it fresh
    /// (<see cref="Create"/>) instead of refusing the snapshot. Default false: a missing section is a bad file. A
    /// component added after snapshots were already written says true when a fresh one is what those VMs would have had
    /// (say a clock that reads the host time); its sections are still checked strictly when present.
    /// </summary>
    static virtual bool CreatedFreshWhenAbsent => false;

    /// <summary>A fresh component, as at power-on.</summary>
    static abstract TSelf Create(TArgs args);

    /// <summary>
    /// Rebuilds a component from <paramref name="state"/>, which comes from a snapshot file and is hostile: every length
    /// and value is checked as strictly as guest input. <paramref name="version"/> is within the readable range.
    /// </summary>
    /// <exception cref="PersistentStateException">The bytes are malformed or describe an impossible state.</exception>
    static abstract TSelf RestoreState(TArgs args, ushort version, ReadOnlySpan<byte> state);
}
