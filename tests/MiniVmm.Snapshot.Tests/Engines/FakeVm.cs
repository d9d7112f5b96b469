using System.Runtime.InteropServices;
using MiniVmm.Core.Memory;
using MiniVmm.Core.Runtime;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>
/// A VM without KVM for the engines: anonymous guest RAM, a main loop for the start bottom-half, and one "vCPU" — a
/// thread that sweeps RAM writing generation stamps (first and last 8 bytes of each page). Before the first resume it
/// writes only the first <c>touchedPages</c>, so the rest is never-touched memory until the snapshot runs.
/// <para>
/// The writer stores through native memcpy, as a vCPU writes guest RAM inside KVM_RUN, outside managed code: a thread
/// blocked on a write-protected page is then in a P/Invoke, where the runtime never has to stop it for a garbage
/// collection. (Managed stores with a GC.Collect loop beside them were tried too and did not hang; native stores keep
/// the test faithful to vCPUs rather than relying on that.)
/// </para>
/// </summary>
internal sealed partial class FakeVm : ISnapshotSource, IDisposable
{
    private const long Stride = 0x9E37; // odd: i * Stride mod 2^k visits every page once per sweep
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    private readonly MainLoop _loop;
    private readonly long _touchedPages;
    private readonly Thread _writer;
    private readonly ManualResetEventSlim _parked = new();
    private readonly ManualResetEventSlim _running = new(true);
    private volatile bool _pauseRequested, _stop, _resumedOnce;
    private long _writes;
    private readonly bool _untouchedStaysUnwritten;

    /// <param name="untouchedStaysUnwritten">keep writing only the first <paramref name="touchedPages"/> after the freeze too</param>
    public FakeVm(MainLoop loop, long pages, long touchedPages, bool hugePages, bool untouchedStaysUnwritten = false)
    {
        _untouchedStaysUnwritten = untouchedStaysUnwritten;
        if (!long.IsPow2(pages) || !long.IsPow2(touchedPages) || touchedPages > pages) throw new ArgumentException("powers of two");
        _loop = loop;
        _touchedPages = touchedPages;
        Memory = GuestMemory.CreateAnonymous((ulong)pages * GuestMemory.PageSize, hugePages);
        _writer = new Thread(Write) { Name = "fake-vcpu", IsBackground = true };
        _writer.Start();
    }

    public GuestMemory Memory { get; }
    public long Pages => Memory.Regions[0].PageCount;
    public long Writes => Interlocked.Read(ref _writes);
    public int Pauses { get; private set; }
    public int Resumes { get; private set; }
    public int PrepareCalls { get; private set; }

    /// <summary>Guest RAM as it was when the state was captured (the vCPU paused): what a point-in-time image holds.</summary>
    public byte[]? RamAtFreeze { get; private set; }

    public static readonly StateSection TestSection = new("test.cpu", 7, [1, 2, 3, 4]);

    public SnapshotHeaderInfo HeaderInfo(string engine) =>
        new(engine, DescribeConfig(), "test cpu", [new SnapshotRegion(0, (ulong)Pages * GuestMemory.PageSize)]);

    /// <summary>Waits until the writer has swept its pre-snapshot pages a few times.</summary>
    public void WaitForPrefill() =>
        SpinWait.SpinUntil(() => Writes > 3 * _touchedPages, Guard).Should().BeTrue("the writer must make progress");

    /// <summary>True when the writer made <paramref name="more"/> writes after this call (it is not stuck on a protected page).</summary>
    public bool KeepsWriting(long more)
    {
        long start = Writes;
        return SpinWait.SpinUntil(() => Writes >= start + more, Guard);
    }

    public string DescribeConfig() => "{\"test\":true}";

    public void PrepareMemory() => PrepareCalls++;

    public void Pause()
    {
        Pauses++;
        _running.Reset();
        _pauseRequested = true;
        if (!_parked.Wait(Guard)) throw new TimeoutException("the fake vCPU did not pause");
    }

    public IReadOnlyList<StateSection> CaptureState()
    {
        _parked.IsSet.Should().BeTrue("state is captured while the vCPU is paused");
        RamAtFreeze = Memory.Regions[0].GetSpan(0, checked((int)(Pages * (long)GuestMemory.PageSize))).ToArray();
        return [TestSection];
    }

    public void ScheduleResume(Action onResumed) => _loop.Post(() =>
    {
        Resume();
        onResumed();
    });

    public void Resume()
    {
        Resumes++;
        _resumedOnce = true;
        _pauseRequested = false;
        _parked.Reset();
        _running.Set();
    }

    public void SetDirtyLogging(bool enabled) => throw new NotSupportedException("no KVM dirty log here");

    public void GetAndClearDirtyLog(int region, Span<ulong> bitmap) => throw new NotSupportedException("no KVM dirty log here");

    public static ulong Stamp(ulong generation, long page) => generation << 32 | (ulong)page;

    private unsafe void Write()
    {
        var region = Memory.Regions[0];
        nint ram = (nint)region.HostAddressForTests;
        ulong generation = 1;
        ulong stamp = 0;
        while (!_stop)
        {
            long limit = _resumedOnce && !_untouchedStaysUnwritten ? Pages : _touchedPages;
            for (long i = 0; i < limit && !_stop; i++)
            {
                if (_pauseRequested)
                {
                    _parked.Set();
                    _running.Wait();
                    if (_resumedOnce && limit != Pages && !_untouchedStaysUnwritten) break; // the snapshot started: sweep all of RAM from now on
                }
                long page = i * Stride & (limit - 1);
                stamp = Stamp(generation, page);
                nint at = ram + (nint)(page * (long)GuestMemory.PageSize);
                Memcpy(at, (nint)(&stamp), 8);
                Memcpy(at + (nint)GuestMemory.PageSize - 8, (nint)(&stamp), 8);
                Interlocked.Increment(ref _writes);
            }
            generation++;
        }
    }

    [LibraryImport("libc", EntryPoint = "memcpy")]
    private static partial nint Memcpy(nint destination, nint source, nuint count);

    public void Dispose()
    {
        _stop = true;
        _pauseRequested = false;
        _running.Set();
        // A writer stuck on a page the engine left protected must not see its RAM unmapped under it.
        if (!_writer.Join(Guard)) throw new InvalidOperationException("the fake vCPU is stuck: a page stayed write-protected");
        Memory.Dispose();
        _parked.Dispose();
        _running.Dispose();
    }
}
