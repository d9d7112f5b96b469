namespace MiniVmm.Architecture.Tests;

/// <summary>The checkout the tests run from: found by walking up from the test binary to MiniVmm.sln.</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => System.IO.Path.Combine(Root, relative);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "MiniVmm.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no MiniVmm.sln above {AppContext.BaseDirectory}");
    }
}
