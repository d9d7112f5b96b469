namespace MiniVmm.Devices.Virtio.Net;

/// <summary>What a virtio-net device moved and dropped since it was built (host-side statistics, not guest state:
/// not part of a snapshot).</summary>
public sealed record NetCounters(
    long RxFrames, long RxBytes, long TxFrames, long TxBytes,
    /// <summary>Received frames larger than the driver's buffer chain (dropped, the chain returned empty).</summary>
    long RxTooBig,
    /// <summary>Transmit chains too short for a header and an Ethernet header, or longer than the largest frame.</summary>
    long TxMalformed,
    /// <summary>Transmitted frames whose virtio_net_hdr asked for offloads not negotiated, or pointed outside the frame.</summary>
    long TxBadHeader,
    /// <summary>Transmitted frames the backend had no room for, or refused.</summary>
    long TxDropped);
