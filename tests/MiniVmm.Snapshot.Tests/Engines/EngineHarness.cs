using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Runtime;
using MiniVmm.Snapshot.Engines;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Tests.Format;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>A main loop on its own thread, a fake VM on it, and a snapshot file to write: one engine run per test.</summary>
internal sealed class EngineHarness : IDisposable
{
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);
    private readonly Thread _loopThread;
    private readonly TempDirectory _dir = new();

    public EngineHarness(long pages, long touchedPages, bool hugePages = false, bool untouchedStaysUnwritten = false)
    {
        Loop = new MainLoop(NullLogger.Instance);
        _loopThread = new Thread(Loop.Run) { Name = "test-main-loop", IsBackground = true };
        _loopThread.Start();
        Vm = new FakeVm(Loop, pages, touchedPages, hugePages, untouchedStaysUnwritten);
        Path = _dir.File("vm.mvs");
    }

    public MainLoop Loop { get; }
    public FakeVm Vm { get; }
    public string Path { get; }

    public CountingSink CreateSink(string engine, long? failAfterPages = null) =>
        new(SnapshotFileSink.Create(Path, Vm.HeaderInfo(engine), fsync: false), Vm.Pages) { FailAfterPages = failAfterPages };

    /// <summary>Starts the engine on the main loop, as the VMM does, and returns its job.</summary>
    public SnapshotJob Start(ISnapshotEngine engine, ISnapshotSink sink, SnapshotOptions options)
    {
        var started = new TaskCompletionSource<SnapshotJob>(TaskCreationOptions.RunContinuationsAsynchronously);
        Loop.Post(() =>
        {
            try { started.SetResult(engine.Start(Vm, sink, options, NullLogger.Instance)); }
            catch (Exception e) { started.SetException(e); }
        });
        started.Task.Wait(Guard).Should().BeTrue("the engine must start");
        return started.Task.Result;
    }

    public static SnapshotResult Finish(SnapshotJob job)
    {
        job.Completion.Wait(Guard).Should().BeTrue("the snapshot must end");
        return job.Completion.Result;
    }

    /// <summary>Asserts that the file holds exactly RAM at the freeze, every page checksum-verified on read.</summary>
    public void AssertImageIsRamAtFreeze(SnapshotResult result)
    {
        var expected = Vm.RamAtFreeze ?? throw new InvalidOperationException("no state was captured");
        using var file = SnapshotFile.Open(Path);
        file.Sections.Should().ContainSingle().Which.Should().BeEquivalentTo(FakeVm.TestSection);
        var page = new byte[SnapshotFormat.PageSize];
        long nonZero = 0, wrong = 0;
        string? firstWrong = null;
        for (long p = 0; p < Vm.Pages; p++)
        {
            file.ReadPage(0, p, page);
            var want = expected.AsSpan((int)(p * SnapshotFormat.PageSize), SnapshotFormat.PageSize);
            if (want.IndexOfAnyExcept((byte)0) >= 0) nonZero++;
            if (want.SequenceEqual(page)) continue;
            wrong++;
            firstWrong ??= $"page {p}: image stamp 0x{BitConverter.ToUInt64(page):x}, at the freeze 0x{BitConverter.ToUInt64(want):x}";
        }
        (wrong, firstWrong).Should().Be((0L, (string?)null), "the image must be guest RAM at the freeze");
        file.PresentPages(0).Should().Be(nonZero);
        result.PagesSaved.Should().Be(nonZero);
        result.ZeroPages.Should().Be(Vm.Pages - nonZero);
    }

    public void Dispose()
    {
        Vm.Dispose();
        Loop.Stop();
        _loopThread.Join(Guard);
        Loop.Dispose();
        _dir.Dispose();
    }
}
