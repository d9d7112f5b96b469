using System.Buffers.Binary;
using P = MiniVmm.Devices.Virtio.Net.VirtioNetProtocol;

namespace MiniVmm.Devices.Virtio.Net;

/// <summary>
/// Checks the virtio_net_hdr of a frame the driver transmits (virtio 1.2 §5.1.6.2) before it reaches the tap: the
/// offloads it asks for must be ones the driver negotiated, and its offsets must lie inside the frame. A hostile or
/// broken driver could otherwise make the host's stack checksum or segment at offsets of its choosing.
/// </summary>
public static class TransmitHeader
{
    /// <summary>Null when <paramref name="frame"/> (header first, at least a header long) may be sent with the
    /// features <paramref name="acked"/>; otherwise why not.</summary>
    public static string? Problem(ReadOnlySpan<byte> frame, ulong acked)
    {
        byte flags = frame[P.HeaderFlags];
        byte gso = frame[P.HeaderGsoType];
        int frameBytes = frame.Length - P.HeaderSize;
        int hdrLen = BinaryPrimitives.ReadUInt16LittleEndian(frame[P.HeaderHdrLen..]);
        if ((flags & ~P.HeaderFlagNeedsCsum) != 0) return $"header flags 0x{flags:x2} (only NEEDS_CSUM may be sent)";
        bool needsCsum = flags != 0;
        if (needsCsum)
        {
            if ((acked & P.FeatureCsum) == 0) return "NEEDS_CSUM without VIRTIO_NET_F_CSUM negotiated";
            int start = BinaryPrimitives.ReadUInt16LittleEndian(frame[P.HeaderCsumStart..]);
            int offset = BinaryPrimitives.ReadUInt16LittleEndian(frame[P.HeaderCsumOffset..]);
            if (start + offset + 2 > frameBytes) return $"checksum at {start}+{offset} lies outside the {frameBytes}-byte frame";
        }
        if (gso != P.GsoNone)
        {
            ulong needed = gso switch { P.GsoTcpV4 => P.FeatureHostTso4, P.GsoTcpV6 => P.FeatureHostTso6, _ => 0 };
            if (needed == 0) return $"GSO type 0x{gso:x2}, which the device does not offer";
            if ((acked & needed) == 0) return $"GSO type 0x{gso:x2} without its HOST_TSO feature negotiated";
            if (!needsCsum) return "GSO without NEEDS_CSUM";
            if (BinaryPrimitives.ReadUInt16LittleEndian(frame[P.HeaderGsoSize..]) == 0) return "GSO with a segment size of 0";
        }
        if (hdrLen > frameBytes) return $"header length {hdrLen} is longer than the {frameBytes}-byte frame";
        return null;
    }
}
