namespace MiniVmm.Devices.Virtio.Net;

/// <summary>
/// Where a virtio-net device's frames go: a tap in the VM, a fake in tests. Every frame crosses with a
/// <see cref="VirtioNetProtocol.HeaderSize"/>-byte virtio_net_hdr in front (the tap's IFF_VNET_HDR format).
/// Reads and writes never block. Transient host conditions (no room, no memory, an interrupted call) cost at most the
/// frame at hand; only <see cref="NetBackendDeadException"/> ends the device.
/// </summary>
public interface INetBackend : IDisposable
{
    /// <summary>Whether the backend can hand over checksum-offloaded and TSO frames (the GUEST_* features).</summary>
    bool SupportsGuestOffloads { get; }

    /// <summary>Which offloaded frames the guest accepted (called when the driver goes live, and with all false at reset).</summary>
    void SetGuestOffloads(bool csum, bool tso4, bool tso6);

    /// <summary>One frame, header first, into <paramref name="buffer"/>; -1 when none is waiting (or a transient
    /// error lost it).</summary>
    /// <exception cref="NetBackendDeadException">The backend is gone for good.</exception>
    int TryRead(Span<byte> buffer);

    /// <summary>Sends one frame, header first; false when the backend has no room, is short of memory or its link is
    /// down (dropped).</summary>
    /// <exception cref="IOException">The backend refused this frame (a header the host rejects).</exception>
    /// <exception cref="NetBackendDeadException">The backend is gone for good.</exception>
    bool TryWrite(ReadOnlySpan<byte> frame);

    /// <summary>Blocks until frames may be waiting (true) or the backend is being closed (false). Spurious wake-ups
    /// are allowed; a frame that arrives while nobody waits must make the next call return at once.</summary>
    /// <exception cref="NetBackendDeadException">The backend can no longer be watched.</exception>
    bool WaitReadable();

    /// <summary>Makes <see cref="WaitReadable"/> return false from now on (before <see cref="IDisposable.Dispose"/>).</summary>
    void Close();
}
