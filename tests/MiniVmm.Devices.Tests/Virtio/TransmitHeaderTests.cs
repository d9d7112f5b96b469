using System.Buffers.Binary;
using MiniVmm.Devices.Virtio;
using MiniVmm.Devices.Virtio.Net;
using P = MiniVmm.Devices.Virtio.Net.VirtioNetProtocol;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>The driver's virtio_net_hdr on transmit: only negotiated offloads, only offsets inside the frame.</summary>
public sealed class TransmitHeaderTests
{
    private const ulong All = VirtioFeatures.Version1 | P.FeatureCsum | P.FeatureHostTso4 | P.FeatureHostTso6;
    private const int FrameBytes = 100;

    private static byte[] Frame(byte flags = 0, byte gso = P.GsoNone, ushort hdrLen = 0, ushort gsoSize = 0,
        ushort csumStart = 0, ushort csumOffset = 0)
    {
        var f = NetRig.FrameWithHeader(FrameBytes, 1);
        f[P.HeaderFlags] = flags;
        f[P.HeaderGsoType] = gso;
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(P.HeaderHdrLen), hdrLen);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(P.HeaderGsoSize), gsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(P.HeaderCsumStart), csumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(P.HeaderCsumOffset), csumOffset);
        return f;
    }

    /// <summary>A TCP/IPv4 frame as Linux sends it with TSO: checksum at 34+16, headers 54 bytes.</summary>
    private static byte[] Tso4() => Frame(P.HeaderFlagNeedsCsum, P.GsoTcpV4, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16);

    [Fact]
    public void Plain_checksum_offloaded_and_segmentation_offloaded_frames_pass_when_negotiated()
    {
        TransmitHeader.Problem(Frame(), VirtioFeatures.Version1).Should().BeNull();
        TransmitHeader.Problem(Frame(P.HeaderFlagNeedsCsum, csumStart: 34, csumOffset: 16), VirtioFeatures.Version1 | P.FeatureCsum).Should().BeNull();
        TransmitHeader.Problem(Tso4(), All).Should().BeNull();
        var tso6 = Tso4();
        tso6[P.HeaderGsoType] = P.GsoTcpV6;
        TransmitHeader.Problem(tso6, All).Should().BeNull();
        TransmitHeader.Problem(Frame(P.HeaderFlagNeedsCsum, csumStart: FrameBytes - 2), All).Should().BeNull("the checksum's last byte is the frame's");
    }

    [Theory]
    [InlineData(VirtioFeatures.Version1, "NEEDS_CSUM without")]
    [InlineData(VirtioFeatures.Version1 | P.FeatureCsum, "without its HOST_TSO feature")]
    [InlineData(VirtioFeatures.Version1 | P.FeatureCsum | P.FeatureHostTso6, "without its HOST_TSO feature")]
    public void Offloads_the_driver_did_not_negotiate_are_refused(ulong acked, string why)
    {
        TransmitHeader.Problem(Tso4(), acked).Should().Contain(why);
    }

    public static TheoryData<byte[], string> Hostile() => new()
    {
        { Frame(P.HeaderFlagNeedsCsum, csumStart: FrameBytes - 1), "outside the 100-byte frame" },
        { Frame(P.HeaderFlagNeedsCsum, csumStart: 60, csumOffset: 60), "outside the 100-byte frame" },
        { Frame(P.HeaderFlagNeedsCsum, csumStart: ushort.MaxValue, csumOffset: ushort.MaxValue), "outside the 100-byte frame" },
        { Frame(hdrLen: FrameBytes + 1), "header length 101" },
        { Frame(P.HeaderFlagNeedsCsum, P.GsoTcpV4, hdrLen: 54, gsoSize: 0, csumStart: 34, csumOffset: 16), "segment size of 0" },
        { Frame(gso: P.GsoTcpV4, hdrLen: 54, gsoSize: 1448), "GSO without NEEDS_CSUM" },
        { Frame(P.HeaderFlagNeedsCsum, 3 /* UDP (UFO) */, hdrLen: 42, gsoSize: 1448, csumStart: 34, csumOffset: 6), "does not offer" },
        { Frame(P.HeaderFlagNeedsCsum, P.GsoTcpV4 | 0x80 /* ECN */, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16), "does not offer" },
        { Frame(P.HeaderFlagDataValid), "only NEEDS_CSUM may be sent" },
        { Frame(0x80), "only NEEDS_CSUM may be sent" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Offsets_outside_the_frame_and_impossible_requests_are_refused(byte[] frame, string why)
    {
        TransmitHeader.Problem(frame, All).Should().Contain(why);
    }

    [Fact]
    public void A_frame_asking_for_offloads_not_negotiated_is_dropped_counted_and_warned_at_a_bounded_rate()
    {
        using var rig = new NetRig(txSize: 64);
        rig.BringUp(VirtioFeatures.Version1 | P.FeatureCsum); // no HOST_TSO4
        const int Bad = 40;
        for (int i = 0; i < Bad; i++) rig.Transmit(Tso4());
        var good = Tso4();
        good[P.HeaderGsoType] = P.GsoNone;
        rig.Transmit(good);
        rig.Tx.WaitUsed(Bad + 1).Should().BeTrue();

        rig.Net.Counters.TxBadHeader.Should().Be(Bad);
        rig.Backend.Sent.Should().ContainSingle("only the frame without GSO is sent")
            .Which[P.HeaderGsoType].Should().Be(P.GsoNone);
        rig.NeedsReset.Should().BeFalse("a bad header costs its frame, not the device");
        var warnings = rig.Log.Warnings.Where(w => w.Contains("HOST_TSO", StringComparison.Ordinal)).ToList();
        warnings.Should().NotBeEmpty().And.HaveCountLessThan(Bad / 2, "the guest cannot flood the log");
    }

    [Fact]
    public void A_segmentation_offloaded_frame_the_driver_negotiated_reaches_the_backend_unchanged()
    {
        using var rig = new NetRig();
        rig.BringUp(All);
        var frame = Tso4();
        rig.Transmit(frame);
        rig.Tx.WaitUsed(1).Should().BeTrue();
        rig.Backend.Sent.Should().ContainSingle().Which.Should().Equal(frame);
        rig.Net.Counters.TxBadHeader.Should().Be(0);
    }
}
