using System.Diagnostics;
using System.Globalization;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

/// <summary>A fresh directory per test class instance, removed afterwards.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Root = Directory.CreateTempSubdirectory("minivmm-format-").FullName;
    }

    public string Root { get; }

    public string File(string name) => System.IO.Path.Combine(Root, name);

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
    }
}

/// <summary>
/// A small guest layout plus an expected-content model: what the snapshot must contain after a sequence of writes.
/// </summary>
public sealed class Scenario
{
    public const int Page = SnapshotFormat.PageSize;
    public static readonly DateTimeOffset FixedTime = new(2025, 1, 2, 3, 4, 5, 678, TimeSpan.Zero);
    /// <summary>With <see cref="FixedTime"/>, makes a writer's output reproducible (a stream and its direct file).</summary>
    public static readonly Guid FixedId = new("0b7e5a52-9d3c-4c1e-8f6a-2d4b1c9e7f30");

    public Scenario(params (ulong Gpa, int Pages)[] regions)
    {
        Info = new SnapshotHeaderInfo("test-engine", "{\"vcpus\":2,\"memory\":\"small\"}", "Test CPU @ 1.00GHz",
            regions.Select(r => new SnapshotRegion(r.Gpa, (ulong)r.Pages * Page)).ToArray());
        Expected = regions.Select(r => new byte[r.Pages][]).ToArray();
    }

    public static Scenario Default() => new((0, 48), (0x1_0000_0000, 20));

    public SnapshotHeaderInfo Info { get; }

    /// <summary>Expected content per region and page; null = zero.</summary>
    public byte[]?[][] Expected { get; }

    public IReadOnlyList<StateSection> Sections { get; } =
    [
        new("vcpu0", 1, Enumerable.Range(0, 700).Select(i => (byte)(i * 7)).ToArray()),
        new("vm", 3, [1, 2, 3]),
        new("serial0", 1, []),
    ];

    /// <summary>Deterministic non-zero page content.</summary>
    public static byte[] Content(int region, long page, int generation)
    {
        var b = new byte[Page];
        new Random(unchecked((int)(region * 1_000_003L + page * 7919L + generation * 104_729L))).NextBytes(b);
        b[0] = (byte)(generation + 1); // never all zero
        return b;
    }

    /// <summary>Writes one page to the sink and records it in the model (null data = a zero page).</summary>
    public void Write(ISnapshotSink sink, int region, long page, byte[]? data)
    {
        sink.WritePages(region, page, data ?? new byte[Page]);
        lock (Expected) Expected[region][page] = data;
    }

    /// <summary>A typical mix: about a third of the pages zero, some runs, written in a shuffled order.</summary>
    public void WriteMix(ISnapshotSink sink, int seed = 1)
    {
        var rng = new Random(seed);
        var order = new List<(int Region, long Page)>();
        for (int g = 0; g < Expected.Length; g++)
            for (long p = 0; p < Expected[g].Length; p++) order.Add((g, p));
        foreach (var (g, p) in order.OrderBy(_ => rng.Next()))
            Write(sink, g, p, rng.Next(3) == 0 ? null : Content(g, p, 0));
    }

    public byte[] Build(TempDirectory dir, string name = "snap.bin", int seed = 1)
    {
        string path = dir.File(name);
        using (var sink = SnapshotFileSink.Create(path, Info, fsync: false, createdAt: FixedTime, snapshotId: FixedId))
        {
            WriteMix(sink, seed);
            sink.Complete(Sections);
        }
        return System.IO.File.ReadAllBytes(path);
    }

    /// <summary>Checks every page and section of an opened snapshot against the model.</summary>
    public void AssertMatches(SnapshotFile file)
    {
        file.Info.Engine.Should().Be(Info.Engine);
        file.Info.VmConfig.Should().Be(Info.VmConfig);
        file.Info.HostCpuModel.Should().Be(Info.HostCpuModel);
        file.Info.Regions.Should().Equal(Info.Regions);
        file.Sections.Select(s => (s.Id, s.Version)).Should().Equal(Sections.Select(s => (s.Id, s.Version)));
        for (int i = 0; i < Sections.Count; i++) file.Sections[i].Data.Should().Equal(Sections[i].Data);
        var buffer = new byte[Page];
        for (int g = 0; g < Expected.Length; g++)
        {
            file.PresentPages(g).Should().Be(Expected[g].Count(p => p is not null));
            for (long p = 0; p < Expected[g].Length; p++)
            {
                var expected = Expected[g][p];
                file.IsPresent(g, p).Should().Be(expected is not null, $"region {g} page {p}");
                file.ReadPage(g, p, buffer);
                if (expected is null) buffer.AsSpan().IndexOfAnyExcept((byte)0).Should().Be(-1, $"region {g} page {p} is zero");
                else buffer.AsSpan().SequenceEqual(expected).Should().BeTrue($"region {g} page {p} content");
            }
        }
        file.Verify().Errors.Should().BeEmpty();
    }
}

public static class DiskUsage
{
    /// <summary>Bytes actually allocated to a file (st_blocks * 512), via coreutils stat.</summary>
    public static long AllocatedBytes(string path)
    {
        var psi = new ProcessStartInfo("stat", ["-c", "%b %B", path]) { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var parts = output.Trim().Split(' ');
        return long.Parse(parts[0], CultureInfo.InvariantCulture) * long.Parse(parts[1], CultureInfo.InvariantCulture);
    }
}
