using System.Text;
using Iced.Intel;

namespace MiniVmm.Firmware.Boot;

/// <summary>An Iced assembler bound to the address its code will run at, so label addresses can be read back after
/// assembly (the 32-bit entry needs the address of the 64-bit entry, the ELF notes need the 32-bit entries).</summary>
public sealed class CodeBlock
{
    public CodeBlock(int bitness, ulong address)
    {
        Asm = new Assembler(bitness);
        Address = address;
    }

    public Assembler Asm { get; }
    public ulong Address { get; }

    public AssembledCode Assemble()
    {
        var ms = new MemoryStream();
        var result = Asm.Assemble(new StreamCodeWriter(ms), Address, BlockEncoderOptions.ReturnNewInstructionOffsets);
        return new AssembledCode(Address, ms.ToArray(), result);
    }
}

public sealed class AssembledCode(ulong address, byte[] bytes, AssemblerResult result)
{
    public ulong Address { get; } = address;
    public byte[] Bytes { get; } = bytes;
    public ulong End => Address + (ulong)Bytes.Length;
    public ulong LabelAddress(Label label) => result.GetLabelRIP(label);
}

/// <summary>NUL-terminated ASCII strings emitted once, after the code that references them RIP-relatively.</summary>
public sealed class StringPool
{
    private readonly Dictionary<string, Label> _labels = new(StringComparer.Ordinal);

    public Label Get(Assembler a, string s)
    {
        if (!_labels.TryGetValue(s, out var l))
        {
            l = a.CreateLabel();
            _labels[s] = l;
        }
        return l;
    }

    public void Emit(Assembler a)
    {
        foreach (var (s, label) in _labels)
        {
            var l = label;
            a.Here(ref l);
            a.db(Encoding.ASCII.GetBytes(s + "\0"));
        }
    }
}

public static class AssemblerExtensions
{
    /// <summary>Binds <paramref name="label"/> here. Iced allows one label per instruction, so the label gets its own
    /// zero-byte pseudo-instruction; labels can then follow each other freely.</summary>
    public static void Here(this Assembler a, ref Label label)
    {
        a.Label(ref label);
        a.zero_bytes();
    }
}
