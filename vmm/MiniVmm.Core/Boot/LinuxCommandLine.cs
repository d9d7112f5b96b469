namespace MiniVmm.Core.Boot;

/// <summary>
/// What MiniVmm adds to a Linux kernel's command line unless the user's line already sets it:
/// <c>console=ttyS0</c> (the only console MiniVmm has is the 8250 on COM1) and <c>tsc_early_khz=N</c> (the TSC rate KVM
/// reports), so the kernel does not calibrate its TSC against the PIT, a loop that runs for a long time when guest
/// kernel code is emulated. With a known TSC rate Linux also derives loops-per-jiffy from it and skips the delay-loop
/// calibration ("Calibrating delay loop (skipped), value calculated using timer frequency"); <c>lpj=</c> itself is not
/// appended because its value depends on the kernel's CONFIG_HZ, which the loader cannot know.
/// </summary>
public static class LinuxCommandLine
{
    public const string DefaultConsole = "console=ttyS0";

    /// <summary><paramref name="userLine"/> with the defaults appended (<paramref name="tscKhz"/> 0 = unknown: none).</summary>
    public static string WithDefaults(string userLine, int tscKhz)
    {
        ArgumentNullException.ThrowIfNull(userLine);
        string line = userLine.Trim();
        if (!HasParameter(line, "console"))
            line = (line + " " + DefaultConsole).Trim();
        if (tscKhz > 0 && !HasParameter(line, "tsc_early_khz"))
            line = line + " tsc_early_khz=" + tscKhz;
        return line;
    }

    /// <summary>True when a space-separated word of <paramref name="line"/> is <c>name=...</c>.</summary>
    public static bool HasParameter(string line, string name) =>
        line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Any(w => w.StartsWith(name + "=", StringComparison.Ordinal));
}
