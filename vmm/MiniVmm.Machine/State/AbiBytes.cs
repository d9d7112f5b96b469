using System.Runtime.InteropServices;

namespace MiniVmm.Machine.State;

/// <summary>KVM structs are stored as their raw kernel-ABI bytes (the ABI is stable); lengths are checked on the way back.</summary>
internal static class AbiBytes
{
    public static byte[] Of<T>(T value) where T : unmanaged =>
        MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1)).ToArray();

    public static T To<T>(byte[] data, string what) where T : unmanaged
    {
        int size = Marshal.SizeOf<T>();
        if (data.Length != size)
            throw new StateRestoreException($"section '{what}': {data.Length} bytes recorded, {size} expected by this kernel ABI");
        return MemoryMarshal.Read<T>(data);
    }

    public static byte[] OfArray<T>(T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    public static T[] ToArray<T>(byte[] data, string what) where T : unmanaged
    {
        int size = Marshal.SizeOf<T>();
        if (data.Length % size != 0) throw new StateRestoreException($"section '{what}': {data.Length} bytes is not a whole number of {size}-byte entries");
        return MemoryMarshal.Cast<byte, T>(data).ToArray();
    }
}

/// <summary>Recorded state that cannot be applied: malformed, of an unknown version, or refused by this host's KVM.
/// Always a defect of the snapshot's content (the CLI exits 120); the message names the section.</summary>
public sealed class StateRestoreException(string message, Exception? inner = null) : Exception(message, inner);
