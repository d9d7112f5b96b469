using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Firmware.Tests;

/// <summary>A deliberately independent, minimal ELF64 reader for the tests (program headers and notes only).</summary>
internal sealed class ElfFile
{
    public sealed record Phdr(uint Type, uint Flags, ulong Offset, ulong VAddr, ulong PAddr, ulong FileSize, ulong MemSize, ulong Align);
    public sealed record Note(string Name, uint Type, byte[] Desc);

    public ElfFile(byte[] bytes)
    {
        Bytes = bytes;
        var s = bytes.AsSpan();
        if (!s[..4].SequenceEqual("\x7F"u8.ToArray().Concat("ELF"u8.ToArray()).ToArray()))
            throw new FormatException("not ELF");
        Class = s[4];
        Data = s[5];
        Type = BinaryPrimitives.ReadUInt16LittleEndian(s[16..]);
        Machine = BinaryPrimitives.ReadUInt16LittleEndian(s[18..]);
        Entry = BinaryPrimitives.ReadUInt64LittleEndian(s[24..]);
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(s[32..]);
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(s[54..]);
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(s[56..]);
        for (int i = 0; i < phnum; i++)
        {
            var p = s[(int)(phoff + (ulong)(i * phentsize))..];
            Phdrs.Add(new Phdr(
                BinaryPrimitives.ReadUInt32LittleEndian(p), BinaryPrimitives.ReadUInt32LittleEndian(p[4..]),
                BinaryPrimitives.ReadUInt64LittleEndian(p[8..]), BinaryPrimitives.ReadUInt64LittleEndian(p[16..]),
                BinaryPrimitives.ReadUInt64LittleEndian(p[24..]), BinaryPrimitives.ReadUInt64LittleEndian(p[32..]),
                BinaryPrimitives.ReadUInt64LittleEndian(p[40..]), BinaryPrimitives.ReadUInt64LittleEndian(p[48..])));
        }
        foreach (var ph in Phdrs.Where(p => p.Type == 4))
        {
            var n = s.Slice((int)ph.Offset, (int)ph.FileSize);
            int off = 0;
            while (off + 12 <= n.Length)
            {
                int namesz = (int)BinaryPrimitives.ReadUInt32LittleEndian(n[off..]);
                int descsz = (int)BinaryPrimitives.ReadUInt32LittleEndian(n[(off + 4)..]);
                uint type = BinaryPrimitives.ReadUInt32LittleEndian(n[(off + 8)..]);
                int nameOff = off + 12;
                int descOff = nameOff + Align4(namesz);
                string name = Encoding.ASCII.GetString(n.Slice(nameOff, namesz)).TrimEnd('\0');
                Notes.Add(new Note(name, type, n.Slice(descOff, descsz).ToArray()));
                off = descOff + Align4(descsz);
            }
        }
    }

    public byte[] Bytes { get; }
    public byte Class { get; }
    public byte Data { get; }
    public ushort Type { get; }
    public ushort Machine { get; }
    public ulong Entry { get; }
    public List<Phdr> Phdrs { get; } = [];
    public List<Note> Notes { get; } = [];
    public IEnumerable<Phdr> Loads => Phdrs.Where(p => p.Type == 1);

    /// <summary>Bytes at a guest physical address as the loader would place them (zero in the bss part).</summary>
    public byte[] ReadPhysical(ulong addr, int length)
    {
        var seg = Loads.Single(p => addr >= p.PAddr && addr + (ulong)length <= p.PAddr + p.MemSize);
        var result = new byte[length];
        for (int i = 0; i < length; i++)
        {
            ulong rel = addr + (ulong)i - seg.PAddr;
            if (rel < seg.FileSize)
                result[i] = Bytes[seg.Offset + rel];
        }
        return result;
    }

    public bool IsFileBacked(ulong addr, ulong length) =>
        Loads.Any(p => addr >= p.PAddr && addr + length <= p.PAddr + p.FileSize);

    public ulong NoteU64(string name, uint type) =>
        BinaryPrimitives.ReadUInt64LittleEndian(Notes.Single(n => n.Name == name && n.Type == type).Desc);

    private static int Align4(int n) => (n + 3) & ~3;
}
