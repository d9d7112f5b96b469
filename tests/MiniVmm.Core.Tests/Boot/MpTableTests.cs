using System.Buffers.Binary;
using System.Text;
using FluentAssertions;
using MiniVmm.Core.Boot;

namespace MiniVmm.Core.Tests.Boot;

public sealed class MpTableTests
{
    private static byte Sum(ReadOnlySpan<byte> bytes)
    {
        byte s = 0;
        foreach (byte b in bytes) s += b;
        return s;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(16)]
    public void Table_is_well_formed_for_each_vcpu_count(int vcpus)
    {
        byte[] t = MpTable.Build(vcpus);
        t.Length.Should().BeLessThanOrEqualTo(MpTable.MaxSize);
        Encoding.ASCII.GetString(t, 0, 4).Should().Be("_MP_");
        BinaryPrimitives.ReadUInt32LittleEndian(t.AsSpan(4)).Should().Be(MpTable.Address + 16);
        Sum(t.AsSpan(0, 16)).Should().Be(0, "the floating pointer's checksum");
        t[11].Should().Be(0, "feature byte 1: a configuration table follows");

        ReadOnlySpan<byte> c = t.AsSpan(16);
        Encoding.ASCII.GetString(c[..4]).Should().Be("PCMP");
        int length = BinaryPrimitives.ReadUInt16LittleEndian(c[4..]);
        length.Should().Be(t.Length - 16);
        Sum(c[..length]).Should().Be(0, "the configuration table's checksum");
        BinaryPrimitives.ReadUInt32LittleEndian(c[36..]).Should().Be(0xfee00000);
        int entries = BinaryPrimitives.ReadUInt16LittleEndian(c[34..]);

        var processors = new List<(byte ApicId, byte Flags)>();
        var pins = new List<(byte BusIrq, byte Pin, byte Apic)>();
        byte? ioApicId = null;
        int at = 44;
        for (int i = 0; i < entries; i++)
        {
            byte type = c[at];
            switch (type)
            {
                case 0: processors.Add((c[at + 1], c[at + 3])); at += 20; break;
                case 2:
                    ioApicId = c[at + 1];
                    BinaryPrimitives.ReadUInt32LittleEndian(c[(at + 4)..]).Should().Be(0xfec00000);
                    at += 8; break;
                case 3: pins.Add((c[at + 5], c[at + 7], c[at + 6])); at += 8; break;
                default: at += 8; break;
            }
        }
        at.Should().Be(length);
        processors.Should().Equal(Enumerable.Range(0, vcpus).Select(i => ((byte)i, (byte)(i == 0 ? 3 : 1))));
        ioApicId.Should().Be((byte)vcpus, "the id after the last CPU's");
        pins.Should().Equal(Enumerable.Range(0, 24).Select(i => ((byte)i, (byte)i, (byte)vcpus)),
            "IRQs 0..23 identity-mapped to IOAPIC pins, including 16+ for virtio-mmio");
    }
}
