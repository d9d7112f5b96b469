using System.Text;

namespace MiniVmm.Core.Boot;

/// <summary>The command line as the bytes a boot protocol hands the kernel (NUL-terminated by the zeroed page it is
/// written to), checked against the protocol's limit before anything is written.</summary>
internal static class BootCommandLine
{
    /// <param name="limitText">how the limit is named in the error, e.g. "this kernel accepts at most 2047 (cmdline_size)".</param>
    public static byte[] Encode(string cmdline, int limit, string limitText)
    {
        if (cmdline.Contains('\0'))
            throw new BootImageException("kernel command line contains a NUL character");
        byte[] bytes = Encoding.UTF8.GetBytes(cmdline);
        if (bytes.Length > limit)
            throw new BootImageException($"kernel command line is {bytes.Length} bytes; {limitText}");
        return bytes;
    }
}
