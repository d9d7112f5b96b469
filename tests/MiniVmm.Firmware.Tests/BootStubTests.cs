using System.Buffers.Binary;
using Iced.Intel;
using MiniVmm.Firmware.Boot;
using MiniVmm.Firmware.Guests.Writer;

namespace MiniVmm.Firmware.Tests;

public class BootStubTests
{
    private static readonly BootLayout L = WriterLayout.Boot;

    [Fact]
    public void Gdt_has_flat_kernel_and_user_segments_and_one_tss_per_vcpu()
    {
        var gdt = BootTables.BuildGdt(L);
        ulong D(int sel) => BinaryPrimitives.ReadUInt64LittleEndian(gdt.AsSpan(sel & ~3));
        D(0).Should().Be(0);
        D(BootLayout.KernelCode).Should().Be(BootTables.KernelCode64);
        ((D(BootLayout.UserCode) >> 45) & 3).Should().Be(3, "user code DPL");
        ((D(BootLayout.UserData) >> 45) & 3).Should().Be(3, "user data DPL");
        ((D(BootLayout.UserCode) >> 53) & 1).Should().Be(1, "user code is 64-bit (L)");
        for (int i = 0; i < L.MaxVcpus; i++)
        {
            var d = gdt.AsSpan(BootLayout.FirstTssSelector + 16 * i, 16);
            d[5].Should().Be(0x89, "present, available 64-bit TSS");
            ulong b = BinaryPrimitives.ReadUInt16LittleEndian(d[2..]) | ((ulong)d[4] << 16) | ((ulong)d[7] << 24)
                | ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(d[8..]) << 32);
            b.Should().Be(L.TssAddress(i));
            BinaryPrimitives.ReadUInt16LittleEndian(d).Should().Be(BootLayout.TssLimit);
        }
        var gdtr = BootTables.BuildGdtr(L);
        BinaryPrimitives.ReadUInt16LittleEndian(gdtr).Should().Be((ushort)(L.GdtSize - 1));
        BinaryPrimitives.ReadUInt32LittleEndian(gdtr.AsSpan(2)).Should().Be((uint)L.Gdt);
    }

    [Theory]
    [InlineData(0x3F8, true)]
    [InlineData(0x3FD, true)]
    [InlineData(0x3FF, true)]
    [InlineData(0xF4, true)]
    [InlineData(0x520, true)]
    [InlineData(0x523, true)]
    [InlineData(0x3F7, false)]
    [InlineData(0x80, false)]
    [InlineData(0x524, false)]
    [InlineData(0x5FF, false)]
    public void Tss_io_bitmap_opens_exactly_the_guest_ports(int port, bool allowed)
    {
        var area = BootTables.BuildTssArea(L);
        for (int i = 0; i < L.MaxVcpus; i++)
        {
            var tss = area.AsSpan(i * BootLayout.TssStride);
            int mapBase = BinaryPrimitives.ReadUInt16LittleEndian(tss[0x66..]);
            mapBase.Should().Be(BootLayout.TssHeaderSize);
            bool denied = (tss[mapBase + port / 8] & (1 << (port % 8))) != 0;
            denied.Should().Be(!allowed);
            tss[BootLayout.TssLimit].Should().Be(0xFF, "terminating byte inside the limit");
            BinaryPrimitives.ReadUInt64LittleEndian(tss[4..]).Should().Be(L.StackTop(i));
        }
    }

    [Fact]
    public void Page_tables_identity_map_with_user_bit_at_every_level()
    {
        var t = BootTables.BuildPageTables(L);
        ulong E(int table, int index) => BinaryPrimitives.ReadUInt64LittleEndian(t.AsSpan(table * 0x1000 + index * 8));
        E(0, 0).Should().Be(L.Pdpt | 7);
        for (int i = 0; i < L.PdCount; i++)
        {
            E(1, i).Should().Be((L.FirstPd + (ulong)i * 0x1000) | 7);
            for (int j = 0; j < 512; j += 97)
                E(2 + i, j).Should().Be((((ulong)i << 30) | ((ulong)j << 21)) | 0x87);
        }
        E(1, L.PdCount).Should().Be(0);
        ((ulong)L.PdCount << 30).Should().Be(L.MappedBytes);
    }

    [Fact]
    public void Entries_decode_to_the_documented_boot_path()
    {
        var img = WriterGuest.BuildImage();
        var elf = new ElfFile(img.Elf);

        var bsp = Decode(elf, 32, img.BspEntry, 12);
        bsp[0].Mnemonic.Should().Be(Mnemonic.Cli);
        bsp[1].Mnemonic.Should().Be(Mnemonic.Mov);   // store EBX (hvm_start_info)
        bsp[1].MemoryDisplacement32.Should().Be((uint)WriterLayout.Var.StartInfo);
        bsp[1].Op1Register.Should().Be(Register.EBX);

        var ap = Decode(elf, 32, img.ApEntry, 20);
        var far = ap.First(i => i.Code == Code.Jmp_ptr1632);
        far.FarBranchSelector.Should().Be(BootLayout.KernelCode);
        ((ulong)far.FarBranch32).Should().Be(img.Entry64);
        ap.Should().Contain(i => i.Mnemonic == Mnemonic.Lgdt);
        ap.Should().Contain(i => i.Mnemonic == Mnemonic.Wrmsr);

        var long64 = Decode(elf, 64, img.Entry64, 60);
        long64.Should().Contain(i => i.Mnemonic == Mnemonic.Ltr);
        long64.Should().Contain(i => i.Mnemonic == Mnemonic.Iretq);
        long64.Should().NotContain(i => i.Mnemonic == Mnemonic.Int3 || i.Code == Code.INVALID);
    }

    [Fact]
    public void Sixty_four_bit_code_uses_absolute_addresses_for_shared_variables()
    {
        var img = WriterGuest.BuildImage();
        var elf = new ElfFile(img.Elf);
        var code = Decode(elf, 64, img.Entry64, 4000);
        var refs = code.Where(i => i.Code != Code.INVALID && i.OpCount > 0 && Enumerable.Range(0, i.OpCount)
            .Any(o => i.GetOpKind(o) == OpKind.Memory) && i.MemoryBase == Register.None && i.MemoryIndex == Register.None)
            .Select(i => i.MemoryDisplacement64).ToList();
        refs.Should().Contain(WriterLayout.Var.Release);
        refs.Should().Contain(GuestAbi.StatusPageGpa + (ulong)GuestAbi.Status.Magic);
    }

    private static List<Instruction> Decode(ElfFile elf, int bitness, ulong address, int max)
    {
        var seg = elf.Loads.Single(p => address >= p.PAddr && address < p.PAddr + p.FileSize);
        int offset = (int)(seg.Offset + (address - seg.PAddr));
        int length = (int)(seg.FileSize - (address - seg.PAddr));
        var decoder = Decoder.Create(bitness, new ByteArrayCodeReader(elf.Bytes, offset, length));
        decoder.IP = address;
        var list = new List<Instruction>();
        while (list.Count < max && decoder.IP < address + (ulong)length)
            list.Add(decoder.Decode());
        return list;
    }
}
