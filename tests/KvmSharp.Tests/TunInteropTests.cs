using System.Runtime.CompilerServices;
using MiniVmm.Tests.Shared;
using KvmSharp.Interop;

namespace KvmSharp.Tests;

/// <summary>TUN/TAP and AF_PACKET ABI: request numbers as &lt;linux/if_tun.h&gt; expands them, struct sizes and
/// offsets on x86-64, and the refusals TapDevice gives before it touches the kernel.</summary>
public sealed unsafe class TunInteropTests
{
    [Fact]
    public void Tun_request_numbers_match_the_header_values()
    {
        Tun.TUNSETIFF.Should().Be(0x400454caU);
        Tun.TUNGETFEATURES.Should().Be(0x800454cfU);
        Tun.TUNSETOFFLOAD.Should().Be(0x400454d0U);
        Tun.TUNGETIFF.Should().Be(0x800454d2U);
        Tun.TUNGETVNETHDRSZ.Should().Be(0x800454d7U);
        Tun.TUNSETVNETHDRSZ.Should().Be(0x400454d8U);
    }

    [Fact]
    public void Tun_flags_match_the_header()
    {
        Tun.IFF_TAP.Should().Be(0x0002);
        Tun.IFF_NO_PI.Should().Be(0x1000);
        Tun.IFF_VNET_HDR.Should().Be(0x4000);
        (Tun.TUN_F_CSUM | Tun.TUN_F_TSO4 | Tun.TUN_F_TSO6).Should().Be(0x7u);
        ((uint)(TapOffloads.Checksum | TapOffloads.Tso4 | TapOffloads.Tso6)).Should().Be(Tun.TUN_F_CSUM | Tun.TUN_F_TSO4 | Tun.TUN_F_TSO6);
    }

    [Fact]
    public void Ifreq_and_sockaddr_ll_have_the_kernel_layout()
    {
        sizeof(ifreq_t).Should().Be(40);
        var r = new ifreq_t();
        ((int)Unsafe.ByteOffset(ref Unsafe.As<ifreq_t, byte>(ref r), ref Unsafe.As<short, byte>(ref r.ifr_flags))).Should().Be(16);
        sizeof(sockaddr_ll).Should().Be(20);
        var a = new sockaddr_ll();
        ((int)Unsafe.ByteOffset(ref Unsafe.As<sockaddr_ll, byte>(ref a), ref Unsafe.As<int, byte>(ref a.sll_ifindex))).Should().Be(4);
        ((int)Unsafe.ByteOffset(ref Unsafe.As<sockaddr_ll, byte>(ref a), ref a.sll_halen)).Should().Be(11);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("abcdefghijklmnop", "longer than 15 bytes")]
    [InlineData("a/b", "not a valid interface name")]
    [InlineData("a b", "not a valid interface name")]
    public void Bad_tap_names_are_refused_with_the_reason(string name, string why)
    {
        TapDevice.NameProblem(name).Should().Contain(why);
        var open = () => TapDevice.Open(name);
        open.Should().Throw<TapException>().WithMessage($"*{why}*");
    }

    [Fact]
    public void Fifteen_byte_names_are_valid()
    {
        TapDevice.NameProblem("abcdefghijklmno").Should().BeNull();
    }

    [Fact]
    public void A_tap_that_does_not_exist_is_refused_not_created()
    {
        string name = $"mvnx{Environment.ProcessId % 100000}";
        var open = () => TapDevice.Open(name);
        open.Should().Throw<TapException>().WithMessage($"*tap '{name}' does not exist*ip tuntap add dev {name} mode tap*");
        Directory.Exists($"/sys/class/net/{name}").Should().BeFalse("MiniVmm never creates an interface on its own");
    }

    [Fact]
    public void An_interface_that_is_not_a_tap_is_refused()
    {
        var open = () => TapDevice.Open("lo");
        open.Should().Throw<TapException>().WithMessage("*'lo' is not a tap device*");
    }
}

/// <summary>A real tap: frames written by MiniVmm's side appear on the interface and the other way round.</summary>
public sealed class TapDeviceTests
{
    [TapFact]
    public void Frames_cross_the_tap_with_a_vnet_header_in_both_directions()
    {
        using var testTap = new TestTap();
        using var tap = TapDevice.Open(testTap.Name);
        tap.VnetHeaderSize.Should().Be(12);
        using var wire = new PacketSocket(testTap.Name);

        var frame = new byte[60];
        new byte[] { 0x52, 0x54, 0, 0, 0, 1, 0x52, 0x54, 0, 0, 0, 2, 0x88, 0xb5 }.CopyTo(frame, 0);
        for (int i = 14; i < frame.Length; i++) frame[i] = (byte)i;
        wire.Send(frame);
        var buffer = new byte[2048];
        int n = -1;
        for (int i = 0; i < 200 && n < 0; i++) { n = tap.Read(buffer); if (n < 0) Thread.Sleep(10); }
        n.Should().Be(12 + frame.Length);
        buffer.AsSpan(0, 12).ToArray().Should().OnlyContain(b => b == 0, "a plain frame has an empty vnet header");
        buffer.AsSpan(12, frame.Length).ToArray().Should().Equal(frame);

        var back = (byte[])frame.Clone();
        back[5] = 3;
        var withHeader = new byte[12 + back.Length];
        back.CopyTo(withHeader, 12);
        tap.Write(withHeader).Should().BeTrue();
        var got = new byte[2048];
        int m;
        while ((m = wire.Receive(got, 5000)) >= 0 && !got.AsSpan(0, 14).SequenceEqual(back.AsSpan(0, 14))) { }
        m.Should().Be(back.Length);
        got.AsSpan(0, m).ToArray().Should().Equal(back);
        tap.Read(buffer).Should().Be(-1, "nothing else waits and the read does not block");
    }

    [TapFact]
    public void A_tap_held_by_another_process_is_in_use()
    {
        using var testTap = new TestTap();
        using var first = TapDevice.Open(testTap.Name);
        var second = () => TapDevice.Open(testTap.Name);
        second.Should().Throw<TapException>().WithMessage("*already in use*");
    }
}
