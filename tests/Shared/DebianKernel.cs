namespace MiniVmm.Tests.Shared;

/// <summary>The stock Debian bzImage the loader tests parse (package <c>linux-image-cloud-amd64</c>). A test that needs
/// it fails, naming the package, when it is not installed: it never passes without having looked at a real kernel.</summary>
public static class DebianKernel
{
    public const string InstallHint =
        "install it with: apt-get install -y --no-install-recommends linux-image-cloud-amd64 (.ci/run does)";

    /// <summary>The newest /boot/vmlinuz-*-cloud-amd64.</summary>
    public static string Path
    {
        get
        {
            string[] found = Directory.Exists("/boot") ? Directory.GetFiles("/boot", "vmlinuz-*-cloud-amd64") : [];
            if (found.Length == 0)
                throw new InvalidOperationException("no /boot/vmlinuz-*-cloud-amd64: the loader tests need Debian's stock " +
                                                    "bzImage; " + InstallHint);
            Array.Sort(found, StringComparer.Ordinal);
            return found[^1];
        }
    }

    private static readonly Lazy<byte[]> Cached = new(() => File.ReadAllBytes(Path));

    /// <summary>The file's bytes (a fresh copy: tests corrupt it).</summary>
    public static byte[] Bytes() => (byte[])Cached.Value.Clone();
}
