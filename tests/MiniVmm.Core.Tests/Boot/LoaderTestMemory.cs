using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Tests.Boot;

/// <summary>What loader tests do with guest RAM: read bytes back, and mark areas a loader must leave alone.</summary>
internal static class LoaderTestMemory
{
    public const byte ScribbleByte = 0xCC;

    public static byte[] ReadBytes(this GuestMemory memory, ulong gpa, int length)
    {
        byte[] bytes = new byte[length];
        memory.Read(new GuestAddress(gpa), bytes);
        return bytes;
    }

    public static void Scribble(this GuestMemory memory, ulong gpa, int length)
    {
        byte[] junk = new byte[length];
        Array.Fill(junk, ScribbleByte);
        memory.Write(new GuestAddress(gpa), junk);
    }

    public static bool IsScribbled(this GuestMemory memory, ulong gpa, int length) =>
        memory.ReadBytes(gpa, length).All(b => b == ScribbleByte);
}
