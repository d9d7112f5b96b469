using MiniVmm.Core.Memory;

namespace MiniVmm.Devices.Virtio.Queue;

/// <summary>Gathers a chain's readable bytes and scatters into its writable buffers, in order, through GuestMemory.</summary>
public static class ChainIo
{
    /// <summary>Copies readable bytes starting at <paramref name="offset"/> (within the readable part) into
    /// <paramref name="destination"/>; returns how many were available.</summary>
    public static int Read(GuestMemory memory, DescriptorChain chain, ulong offset, Span<byte> destination)
    {
        int copied = 0;
        foreach (var b in chain.Readable)
        {
            if (copied == destination.Length) break;
            if (offset >= b.Length) { offset -= b.Length; continue; }
            int n = (int)Math.Min(b.Length - offset, (ulong)(destination.Length - copied));
            memory.Read(b.Address + offset, destination.Slice(copied, n));
            copied += n;
            offset = 0;
        }
        return copied;
    }

    /// <summary>Copies <paramref name="source"/> into the writable buffers starting at <paramref name="offset"/>
    /// (within the writable part); returns how many bytes fit.</summary>
    public static int Write(GuestMemory memory, DescriptorChain chain, ulong offset, ReadOnlySpan<byte> source)
    {
        int copied = 0;
        foreach (var b in chain.Writable)
        {
            if (copied == source.Length) break;
            if (offset >= b.Length) { offset -= b.Length; continue; }
            int n = (int)Math.Min(b.Length - offset, (ulong)(source.Length - copied));
            memory.Write(b.Address + offset, source.Slice(copied, n));
            copied += n;
            offset = 0;
        }
        return copied;
    }
}
