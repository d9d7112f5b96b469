using Microsoft.Win32.SafeHandles;

namespace MiniVmm.Devices.Virtio.Block;

/// <summary>Positioned reads that must fill their buffer: a drive, its capture, a snapshot's copy of it.</summary>
public static class FileReads
{
    /// <summary>Reads exactly <paramref name="data"/>.Length bytes at <paramref name="offset"/>, however the host splits them.</summary>
    /// <exception cref="IOException">The file ends first, or cannot be read.</exception>
    public static void ReadFully(SafeFileHandle file, Span<byte> data, long offset)
    {
        while (data.Length > 0)
        {
            int got = RandomAccess.Read(file, data, offset);
            if (got <= 0) throw new IOException($"unexpected end of file at byte {offset}");
            data = data[got..];
            offset += got;
        }
    }
}
