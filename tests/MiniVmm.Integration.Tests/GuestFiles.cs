using MiniVmm.Firmware;

namespace MiniVmm.Integration.Tests;

/// <summary>The firmware guests, generated once per test run into a temporary folder.</summary>
public static class GuestFiles
{
    private static readonly Lazy<string> Dir = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), "minivmm-tests-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        GuestImages.WriteAll(dir);
        return dir;
    });

    public static string Hello => Path.Combine(Dir.Value, "hello.elf");
    public static string Writer => Path.Combine(Dir.Value, "writer.elf");
    public static string Virtio => Path.Combine(Dir.Value, GuestImages.VirtioFileName);
    public static string Net => Path.Combine(Dir.Value, GuestImages.NetFileName);

    /// <summary>Writes an ad-hoc image (a test-specific guest) and returns its path.</summary>
    public static string Write(string name, byte[] image)
    {
        string path = Path.Combine(Dir.Value, name);
        File.WriteAllBytes(path, image);
        return path;
    }

    public static string TempPath(string name) => Path.Combine(Dir.Value, $"{Guid.NewGuid():N}-{name}");
}
