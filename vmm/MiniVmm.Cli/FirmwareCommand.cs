using System.CommandLine;
using MiniVmm.Firmware;

namespace MiniVmm.Cli;

/// <summary>`minivmm firmware --out DIR`: writes the test guests so QEMU can boot the very same files.</summary>
internal static class FirmwareCommand
{
    public static Command Create()
    {
        var outDir = new Option<string>("--out") { Description = "directory for hello.elf, writer.elf, vblk.elf and vnet.elf", Required = true };
        var command = new Command("firmware", "Write the built-in test guests (hello.elf, writer.elf, vblk.elf, vnet.elf)") { outDir };
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(outDir)!;
            try
            {
                Directory.CreateDirectory(dir);
                var written = GuestImages.WriteAll(dir);
                Console.WriteLine("wrote " + string.Join(", ", written));
                return ExitCodes.Ok;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return CommonOptions.Fail($"cannot write firmware to '{dir}': {e.Message}");
            }
        });
        return command;
    }
}
