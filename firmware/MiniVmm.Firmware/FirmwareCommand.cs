namespace MiniVmm.Firmware;

/// <summary>
/// Console entry for the CLI (<c>minivmm firmware --out DIR</c>) and scripts: <c>FirmwareCommand.Run(["--out", dir])</c>
/// writes every guest image into DIR and returns a process exit code (0 ok, 2 usage error).
/// </summary>
public static class FirmwareCommand
{
    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        string? dir = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "--out" or "-o" && i + 1 < args.Length)
                dir = args[++i];
            else
            {
                stderr.WriteLine($"firmware: unexpected argument '{args[i]}'");
                dir = null;
                break;
            }
        }
        if (dir is null)
        {
            stderr.WriteLine("usage: firmware --out DIR   (writes hello.elf, writer.elf, vblk.elf and vnet.elf)");
            return 2;
        }
        foreach (var path in GuestImages.WriteAll(dir))
            stdout.WriteLine(path);
        return 0;
    }
}
