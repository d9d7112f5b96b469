namespace MiniVmm.Devices.Virtio.Net;

/// <summary>virtio-net constants (virtio 1.2 §5.1).</summary>
public static class VirtioNetProtocol
{
    public const int ReceiveQueue = 0, TransmitQueue = 1;

    // Feature bits (§5.1.3).
    public const ulong FeatureCsum = 1UL << 0;
    public const ulong FeatureGuestCsum = 1UL << 1;
    public const ulong FeatureMac = 1UL << 5;
    public const ulong FeatureGuestTso4 = 1UL << 7;
    public const ulong FeatureGuestTso6 = 1UL << 8;
    public const ulong FeatureHostTso4 = 1UL << 11;
    public const ulong FeatureHostTso6 = 1UL << 12;
    public const ulong FeatureMrgRxbuf = 1UL << 15;
    public const ulong FeatureStatus = 1UL << 16;

    /// <summary>struct virtio_net_hdr with num_buffers: its size whenever VERSION_1 is negotiated (§5.1.6).</summary>
    public const int HeaderSize = 12;
    public const int HeaderFlags = 0, HeaderGsoType = 1, HeaderHdrLen = 2, HeaderGsoSize = 4, HeaderCsumStart = 6,
        HeaderCsumOffset = 8, HeaderNumBuffers = 10;
    public const byte HeaderFlagNeedsCsum = 1, HeaderFlagDataValid = 2;
    public const byte GsoNone = 0, GsoTcpV4 = 1, GsoTcpV6 = 4;

    public const int EthernetHeaderSize = 14;
    /// <summary>The largest frame either way: a 64 KiB TSO frame with its Ethernet header (Linux's and Firecracker's
    /// bound); anything larger is refused.</summary>
    public const int MaxFrameBytes = 65550;

    // Config space (§5.1.4): mac[6], status (with VIRTIO_NET_F_STATUS).
    public const int ConfigMac = 0, ConfigStatus = 6, ConfigSize = 8;
    public const ushort StatusLinkUp = 1;
}
