using System.Buffers.Binary;
using KvmSharp;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.Restore;
using MiniVmm.Snapshot.Tests.Engines;

namespace MiniVmm.Snapshot.Tests.Restore;

/// <summary>
/// Lazy restore over anonymous guest memory with reader threads in place of vCPUs (userfaultfd MISSING mode needs no
/// KVM): content on first touch, zero pages, making RAM resident, and a corrupt page that stops the VM without
/// leaving the reader blocked.
/// </summary>
public sealed class LazyPageServerTests
{
    private const long Pages = 256;
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    /// <summary>Every third page is absent (zero); a present page holds its number in its first and last 8 bytes.</summary>
    private sealed class StampedPages(long corruptPage = -1) : ISnapshotPages
    {
        public int Reads;

        public IReadOnlyList<SnapshotRegion> Regions { get; } = [new SnapshotRegion(0, (ulong)Pages * GuestMemory.PageSize)];

        public bool IsPresent(int region, long page) => page % 3 != 0;

        public void ReadPages(int region, long firstPage, Span<byte> destination, bool verifyChecksum = true)
        {
            Interlocked.Increment(ref Reads);
            for (int i = 0; i < destination.Length / (int)GuestMemory.PageSize; i++)
            {
                long page = firstPage + i;
                if (page == corruptPage && verifyChecksum) throw new SnapshotFormatException($"page {page}: checksum mismatch");
                var span = destination.Slice(i * (int)GuestMemory.PageSize, (int)GuestMemory.PageSize);
                span.Clear();
                BinaryPrimitives.WriteInt64LittleEndian(span, page);
                BinaryPrimitives.WriteInt64LittleEndian(span[^8..], page);
            }
        }
    }

    private static long Expected(long page) => page % 3 != 0 ? page : 0;

    // Through GuestMemory, as devices read guest RAM: while pages may be missing it faults them in from a system call,
    // so a reader blocked on a missing page never stalls a garbage collection (and with it the page server).
    private static long ReadFirst(GuestMemory memory, long page) => memory.Read<long>(new GuestAddress((ulong)page * GuestMemory.PageSize));

    private static long ReadLast(GuestMemory memory, long page) => memory.Read<long>(new GuestAddress((ulong)(page + 1) * GuestMemory.PageSize - 8));

    /// <summary>Runs <paramref name="read"/> on a thread of its own (a thread that faults blocks until served).</summary>
    private static T OnReader<T>(Func<T> read)
    {
        T result = default!;
        var thread = new Thread(() => result = read()) { IsBackground = true };
        thread.Start();
        thread.Join(Guard).Should().BeTrue("the fault was served");
        return result;
    }

    [UffdWriteProtectFact]
    public void A_touched_page_holds_the_snapshot_s_content_and_an_absent_page_reads_zero()
    {
        using var memory = GuestMemory.CreateAnonymous((ulong)Pages * GuestMemory.PageSize);
        var pages = new StampedPages();
        string? fatal = null;
        using var server = new LazyPageServer(pages, memory, NullLogger.Instance, (m, _) => fatal = m, hugePages: false);
        server.Start(prefetchFirst: null, recordFor: null, backgroundPrefetch: false);

        foreach (long page in new long[] { 100, 1, 3, 255, 0 })
        {
            OnReader(() => ReadFirst(memory, page)).Should().Be(Expected(page), "page {0}", page);
            ReadLast(memory, page).Should().Be(Expected(page));
        }
        server.PagesServedOnFault.Should().BeGreaterThan(0);
        server.IsComplete.Should().BeFalse("nothing prefetches, and only a few fault-around windows were touched");
        fatal.Should().BeNull();
    }

    [UffdWriteProtectFact]
    public void Make_resident_installs_every_page_and_lets_go_of_the_memory()
    {
        using var memory = GuestMemory.CreateAnonymous((ulong)Pages * GuestMemory.PageSize);
        using var server = new LazyPageServer(new StampedPages(), memory, NullLogger.Instance, (_, _) => { }, hugePages: false);
        server.Start(prefetchFirst: null, recordFor: null, backgroundPrefetch: false);
        IGuestMemoryBackend backend = server;

        backend.MakeResident();
        backend.MakeResident(); // a second call does nothing

        server.IsComplete.Should().BeTrue();
        for (long page = 0; page < Pages; page++) ReadFirst(memory, page).Should().Be(Expected(page));
        // Released: another userfaultfd may now register the RAM (a live snapshot's does).
        using var other = UserfaultFd.Create(UffdFeatures.PagefaultFlagWp);
        memory.Regions[0].RegisterWith(other, UffdRegisterMode.WriteProtect).Should().HaveFlag(UffdRangeOperations.WriteProtect);
    }

    [UffdWriteProtectFact]
    public void The_prefetcher_installs_the_rest_once_the_guest_runs()
    {
        using var memory = GuestMemory.CreateAnonymous((ulong)Pages * GuestMemory.PageSize);
        using var completed = new ManualResetEventSlim();
        using var server = new LazyPageServer(new StampedPages(), memory, NullLogger.Instance, (_, _) => { }, hugePages: false);
        server.Completed += completed.Set;
        server.Start(prefetchFirst: [200, 7], recordFor: null);
        completed.Wait(TimeSpan.FromMilliseconds(300)).Should().BeFalse("the prefetcher waits for the vCPUs to start");

        ((IGuestMemoryBackend)server).GuestStarted();

        completed.Wait(Guard).Should().BeTrue();
        server.PagesPrefetched.Should().Be(Pages);
        for (long page = 0; page < Pages; page++) ReadFirst(memory, page).Should().Be(Expected(page));
    }

    [UffdWriteProtectFact]
    public void A_corrupt_page_stops_the_vm_and_its_blocked_reader_is_released_without_the_bad_data()
    {
        const long corrupt = 130;
        using var memory = GuestMemory.CreateAnonymous((ulong)Pages * GuestMemory.PageSize);
        using var stopped = new ManualResetEventSlim();
        (string Message, bool FileAtFault)? fatal = null;
        using var server = new LazyPageServer(new StampedPages(corrupt), memory, NullLogger.Instance,
            (m, file) => { fatal = (m, file); stopped.Set(); }, hugePages: false);
        server.Start(prefetchFirst: null, recordFor: null, backgroundPrefetch: false);

        long read = -1;
        var reader = new Thread(() => read = ReadFirst(memory, corrupt)) { IsBackground = true };
        reader.Start();
        stopped.Wait(Guard).Should().BeTrue("the failed install stops the VM");
        fatal!.Value.FileAtFault.Should().BeTrue();
        fatal.Value.Message.Should().Contain("checksum mismatch");
        server.Failure.Should().NotBeNull();
        reader.Join(TimeSpan.FromMilliseconds(200)).Should().BeFalse("the page was never installed");

        ((IGuestMemoryBackend)server).ReleaseFaultsAfterFailure();

        reader.Join(Guard).Should().BeTrue("releasing the range wakes the blocked reader");
        read.Should().NotBe(corrupt, "the guest never sees the corrupt page's content");
    }
}
