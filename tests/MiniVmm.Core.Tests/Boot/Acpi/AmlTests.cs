using FluentAssertions;
using MiniVmm.Core.Boot.Acpi;

namespace MiniVmm.Core.Tests.Boot.Acpi;

public sealed class AmlTests
{
    [Theory]
    [InlineData(0, new byte[] { 1 })]
    [InlineData(62, new byte[] { 63 })]
    [InlineData(63, new byte[] { 0x41, 0x04 })]              // 65 = 0x41 with two length bytes: lead 0x40|1, then 0x04
    [InlineData(4093, new byte[] { 0x4f, 0xff })]            // 4095
    [InlineData(4094, new byte[] { 0x81, 0x00, 0x01 })]      // 4097 = 0x1001: lead 0x80|1, then 0x100 in two bytes
    public void PackageLength_counts_itself_and_uses_the_shortest_encoding(int bodyLength, byte[] expectedLead)
    {
        byte[] encoded = Aml.PackageLength(new byte[bodyLength]);
        encoded[..expectedLead.Length].Should().Equal(expectedLead);
        encoded.Length.Should().Be(bodyLength + expectedLead.Length);
        Decode(encoded).Should().Be(encoded.Length, "the decoded length spans the PkgLength bytes and the body");
    }

    [Theory]
    [InlineData(0ul, new byte[] { 0x00 })]
    [InlineData(1ul, new byte[] { 0x01 })]
    [InlineData(7ul, new byte[] { 0x0a, 7 })]
    [InlineData(0x1234ul, new byte[] { 0x0b, 0x34, 0x12 })]
    [InlineData(0xd0000000ul, new byte[] { 0x0c, 0, 0, 0, 0xd0 })]
    public void Integers_take_their_shortest_form(ulong value, byte[] expected) => Aml.Integer(value).Should().Equal(expected);

    [Theory]
    [InlineData("_sb_")]
    [InlineData("0ABC")]
    [InlineData("ABCDE")]
    public void Bad_name_segments_are_refused(string name) =>
        FluentActions.Invoking(() => Aml.NameSeg(name)).Should().Throw<ArgumentException>();

    private static int Decode(byte[] pkg)
    {
        int extra = pkg[0] >> 6;
        if (extra == 0) return pkg[0] & 0x3f;
        int length = pkg[0] & 0x0f;
        for (int i = 1; i <= extra; i++) length |= pkg[i] << (4 + 8 * (i - 1));
        return length;
    }
}
