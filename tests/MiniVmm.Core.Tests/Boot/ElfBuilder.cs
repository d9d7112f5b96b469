using System.Buffers.Binary;
using System.Text;
using MiniVmm.Core.Boot;

namespace MiniVmm.Core.Tests.Boot;

/// <summary>Builds small x86 ELF executables for loader tests. Layout: ELF header, program headers (the PT_LOADs in
/// the order added, then one PT_NOTE if any notes were added), the note bytes, then each segment's bytes at an
/// 16-byte aligned offset. <see cref="PatchHeader"/> and <see cref="PatchProgramHeader"/> corrupt a built file.</summary>
public sealed class ElfBuilder
{
    public const ulong DefaultLoadAddress = 0x100000;

    private readonly List<(ulong Paddr, byte[] Data, ulong MemSize)> _loads = [];
    private readonly List<(string Name, uint Type, byte[] Desc)> _notes = [];

    public ElfBuilder(ElfClass elfClass = ElfClass.Elf64)
    {
        Class = elfClass;
        Machine = elfClass == ElfClass.Elf64 ? (ushort)62 : (ushort)3;
    }

    public ElfClass Class { get; }
    public ushort Machine { get; set; }
    public ushort Type { get; set; } = 2;
    public ulong NoteAlign { get; set; } = 4;
    public bool NoteNamesWithoutNul { get; set; }
    /// <summary><c>e_entry</c>; the first segment's address when not set.</summary>
    public ulong? Entry { get; set; }

    private bool Is64 => Class == ElfClass.Elf64;
    public int HeaderSize => Is64 ? 64 : 52;
    public int ProgramHeaderSize => Is64 ? 56 : 32;

    /// <summary>64 bytes of recognizable "code" at 1 MiB with a 0x2000-byte memory size and a PVH note at its
    /// start.</summary>
    public static ElfBuilder Minimal(ElfClass elfClass = ElfClass.Elf64) =>
        new ElfBuilder(elfClass).Load(DefaultLoadAddress, Code(64), 0x2000).PvhEntry(DefaultLoadAddress);

    public static byte[] Code(int length) => Enumerable.Range(0, length).Select(i => (byte)(0x90 + i)).ToArray();

    public ElfBuilder Load(ulong paddr, byte[] data, ulong? memSize = null)
    {
        _loads.Add((paddr, data, memSize ?? (ulong)data.Length));
        return this;
    }

    public ElfBuilder Note(string name, uint type, byte[] desc)
    {
        _notes.Add((name, type, desc));
        return this;
    }

    public ElfBuilder PvhEntry(ulong entry, int size = 8) =>
        Note("Xen", 18, Address(entry, size));

    public ElfBuilder ApEntry(ulong entry, int size = 4) =>
        Note("MiniVmm", 1, Address(entry, size));

    private static byte[] Address(ulong value, int size)
    {
        byte[] desc = new byte[size];
        if (size == 4)
            BinaryPrimitives.WriteUInt32LittleEndian(desc, (uint)value);
        else if (size == 8)
            BinaryPrimitives.WriteUInt64LittleEndian(desc, value);
        return desc;
    }

    public byte[] BuildNotes()
    {
        var notes = new List<byte>();
        foreach ((string name, uint type, byte[] desc) in _notes)
        {
            byte[] nameBytes = Encoding.ASCII.GetBytes(NoteNamesWithoutNul ? name : name + "\0");
            var header = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)nameBytes.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), (uint)desc.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), type);
            notes.AddRange(header);
            notes.AddRange(nameBytes);
            Pad(notes, (int)NoteAlign);
            notes.AddRange(desc);
            Pad(notes, (int)NoteAlign);
        }
        return notes.ToArray();
    }

    private static void Pad(List<byte> bytes, int align)
    {
        while (bytes.Count % align != 0)
            bytes.Add(0);
    }

    public byte[] Build()
    {
        byte[] notes = BuildNotes();
        int phCount = _loads.Count + (_notes.Count > 0 ? 1 : 0);
        int offset = HeaderSize + phCount * ProgramHeaderSize;
        int notesOffset = Align16(offset);
        offset = Align16(notesOffset + notes.Length);
        var loadOffsets = new List<int>();
        foreach (var load in _loads)
        {
            loadOffsets.Add(offset);
            offset = Align16(offset + load.Data.Length);
        }

        byte[] file = new byte[offset];
        file[0] = 0x7F;
        file[1] = (byte)'E';
        file[2] = (byte)'L';
        file[3] = (byte)'F';
        file[4] = (byte)Class;
        file[5] = 1;
        file[6] = 1;
        Span<byte> f = file;
        BinaryPrimitives.WriteUInt16LittleEndian(f[16..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(f[18..], Machine);
        BinaryPrimitives.WriteUInt32LittleEndian(f[20..], 1);
        ulong entry = Entry ?? (_loads.Count > 0 ? _loads[0].Paddr : 0);
        if (Is64)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(f[24..], entry);
            BinaryPrimitives.WriteUInt64LittleEndian(f[32..], (ulong)HeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[52..], (ushort)HeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[54..], (ushort)ProgramHeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[56..], (ushort)phCount);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(f[24..], (uint)entry);
            BinaryPrimitives.WriteUInt32LittleEndian(f[28..], (uint)HeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[40..], (ushort)HeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[42..], (ushort)ProgramHeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[44..], (ushort)phCount);
        }

        for (int i = 0; i < _loads.Count; i++)
        {
            var load = _loads[i];
            WriteProgramHeader(file, i, 1, (ulong)loadOffsets[i], load.Paddr, (ulong)load.Data.Length, load.MemSize,
                0x1000);
            load.Data.CopyTo(file, loadOffsets[i]);
        }
        if (_notes.Count > 0)
        {
            WriteProgramHeader(file, _loads.Count, 4, (ulong)notesOffset, 0, (ulong)notes.Length,
                (ulong)notes.Length, NoteAlign);
            notes.CopyTo(file, notesOffset);
        }
        return file;
    }

    private static int Align16(int value) => (value + 15) & ~15;

    private void WriteProgramHeader(byte[] file, int index, uint type, ulong offset, ulong paddr, ulong fileSize,
        ulong memSize, ulong align)
    {
        Span<byte> ph = file.AsSpan(HeaderSize + index * ProgramHeaderSize, ProgramHeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(ph, type);
        if (Is64)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], 5); // R+X
            BinaryPrimitives.WriteUInt64LittleEndian(ph[8..], offset);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], paddr | 0xffffffff80000000);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[24..], paddr);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], fileSize);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], memSize);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[48..], align);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], (uint)offset);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[8..], (uint)paddr | 0xC0000000);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[12..], (uint)paddr);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[16..], (uint)fileSize);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[20..], (uint)memSize);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[24..], 5);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[28..], (uint)align);
        }
    }

    public enum HeaderField { ProgramHeaderOffset, ProgramHeaderEntrySize, ProgramHeaderCount }

    public enum ProgramHeaderField { Type, Offset, PhysicalAddress, FileSize, MemorySize, Align }

    /// <summary>Overwrites an ELF header field of a built file (class taken from the file).</summary>
    public static void PatchHeader(byte[] file, HeaderField field, ulong value)
    {
        bool is64 = file[4] == 2;
        Span<byte> f = file;
        switch (field)
        {
            case HeaderField.ProgramHeaderOffset when is64:
                BinaryPrimitives.WriteUInt64LittleEndian(f[32..], value);
                break;
            case HeaderField.ProgramHeaderOffset:
                BinaryPrimitives.WriteUInt32LittleEndian(f[28..], (uint)value);
                break;
            case HeaderField.ProgramHeaderEntrySize:
                BinaryPrimitives.WriteUInt16LittleEndian(f[(is64 ? 54 : 42)..], (ushort)value);
                break;
            case HeaderField.ProgramHeaderCount:
                BinaryPrimitives.WriteUInt16LittleEndian(f[(is64 ? 56 : 44)..], (ushort)value);
                break;
        }
    }

    /// <summary>Overwrites a field of program header <paramref name="index"/> of a built file.</summary>
    public static void PatchProgramHeader(byte[] file, int index, ProgramHeaderField field, ulong value)
    {
        bool is64 = file[4] == 2;
        int at = (is64 ? 64 : 52) + index * (is64 ? 56 : 32);
        Span<byte> ph = file.AsSpan(at);
        int fieldOffset = (is64, field) switch
        {
            (_, ProgramHeaderField.Type) => 0,
            (true, ProgramHeaderField.Offset) => 8,
            (true, ProgramHeaderField.PhysicalAddress) => 24,
            (true, ProgramHeaderField.FileSize) => 32,
            (true, ProgramHeaderField.MemorySize) => 40,
            (true, ProgramHeaderField.Align) => 48,
            (false, ProgramHeaderField.Offset) => 4,
            (false, ProgramHeaderField.PhysicalAddress) => 12,
            (false, ProgramHeaderField.FileSize) => 16,
            (false, ProgramHeaderField.MemorySize) => 20,
            (false, ProgramHeaderField.Align) => 28,
            _ => throw new ArgumentOutOfRangeException(nameof(field)),
        };
        if (is64 && field != ProgramHeaderField.Type)
            BinaryPrimitives.WriteUInt64LittleEndian(ph[fieldOffset..], value);
        else
            BinaryPrimitives.WriteUInt32LittleEndian(ph[fieldOffset..], (uint)value);
    }
}
