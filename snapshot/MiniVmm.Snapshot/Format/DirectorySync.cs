using KvmSharp;
using KvmSharp.Interop;

namespace MiniVmm.Snapshot.Format;

/// <summary>fsync of a directory, so a rename into it is durable. Best effort: .NET cannot open directories itself.</summary>
internal static class DirectorySync
{
    private const int O_RDONLY = 0;
    private const int O_DIRECTORY = 0x10000;
    private const long SYS_fsync = 74; // x86_64

    public static void Flush(string directory)
    {
        int fd = Libc.open(directory, O_RDONLY | O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0) return;
        using var handle = new FileDescriptor(fd);
        Libc.syscall(SYS_fsync, fd, 0, 0);
    }
}
