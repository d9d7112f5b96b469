namespace KvmSharp.Interop;

/// <summary>The kernel's <c>_IOC</c> encoding (asm-generic/ioctl.h), so every request number is derived, not typed in.</summary>
internal static class Ioc
{
    public const uint IOC_NONE = 0;
    public const uint IOC_WRITE = 1;
    public const uint IOC_READ = 2;

    public static uint IOC(uint dir, uint type, uint nr, uint size) => (dir << 30) | (size << 16) | (type << 8) | nr;
    public static uint IO(uint type, uint nr) => IOC(IOC_NONE, type, nr, 0);
    public static uint IOR(uint type, uint nr, uint size) => IOC(IOC_READ, type, nr, size);
    public static uint IOW(uint type, uint nr, uint size) => IOC(IOC_WRITE, type, nr, size);
    public static uint IOWR(uint type, uint nr, uint size) => IOC(IOC_READ | IOC_WRITE, type, nr, size);
}
