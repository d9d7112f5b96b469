using System.Collections.Concurrent;
using KvmSharp;
using MiniVmm.Core.Memory;
using MiniVmm.Snapshot.Engines;
using MiniVmm.Snapshot.Tests.Engines;
using MiniVmm.Snapshot.Userfault;

namespace MiniVmm.Snapshot.Tests.Userfault;

/// <summary>
/// The fault loop both write tracking and lazy restore use, over anonymous guest memory with a writer thread and no
/// KVM: faults arrive as (region, page) in order, a stop is honoured with the queue drained, a failing handler surfaces.
/// </summary>
public sealed class UserfaultLoopTests
{
    private const long Pages = 64;

    private sealed class ProtectedRam : IDisposable
    {
        public GuestMemory Memory { get; } = GuestMemory.CreateAnonymous(Pages * GuestMemory.PageSize);
        public UserfaultFd Uffd { get; } = UserfaultFd.Create(WriteTrackingEngine.RequiredFeatures);
        public GuestMemoryRegion Region => Memory.Regions[0];

        private readonly IDisposable _hold;

        public ProtectedRam()
        {
            Region.RegisterWith(Uffd, UffdRegisterMode.WriteProtect);
            Region.WriteProtectAll(Uffd, protect: true);
            _hold = Memory.HoldForUserfaults();
        }

        /// <summary>A host write through GuestMemory (as a device makes one): blocks until its fault is served.</summary>
        public void Write(long page, int offset, byte value) =>
            Memory.Write(new GuestAddress((ulong)page * GuestMemory.PageSize + (ulong)offset), value);

        public void Dispose()
        {
            _hold.Dispose();
            Uffd.Dispose();
            Memory.Dispose();
        }
    }

    [UffdWriteProtectFact]
    public void Write_faults_reach_the_handler_as_guest_pages_in_arrival_order()
    {
        using var ram = new ProtectedRam();
        using var loop = new UserfaultLoop(ram.Uffd, ram.Memory);
        var served = new ConcurrentQueue<(int Region, long Page)>();
        var runner = new Thread(() => loop.Run((region, page, _) =>
        {
            served.Enqueue((region, page));
            ram.Memory.Regions[region].WriteProtect(ram.Uffd, page, 1, protect: false); // wakes the writer
        }, () => false));
        runner.Start();

        long[] order = [7, 3, 60, 0, 33];
        var writer = new Thread(() =>
        {
            foreach (long page in order) ram.Write(page, 100, 0xAB); // blocks until served
        });
        writer.Start();
        writer.Join(TimeSpan.FromSeconds(20)).Should().BeTrue("every write fault was served");

        loop.Stop();
        runner.Join(TimeSpan.FromSeconds(20)).Should().BeTrue("Stop ends Run");
        served.Should().Equal(order.Select(p => (0, p)));
        foreach (long page in order) ram.Region.GetSpan((ulong)page * GuestMemory.PageSize + 100, 1)[0].Should().Be(0xAB);
    }

    [UffdWriteProtectFact]
    public void Finished_ends_the_loop_without_a_stop_and_a_stop_after_dispose_is_harmless()
    {
        using var ram = new ProtectedRam();
        var loop = new UserfaultLoop(ram.Uffd, ram.Memory);
        var done = new ManualResetEventSlim();
        var runner = new Thread(() => loop.Run((_, _, _) => { }, () => done.IsSet));
        runner.Start();
        done.Set();
        runner.Join(TimeSpan.FromSeconds(20)).Should().BeTrue("the loop polls its condition at least every 100 ms");
        loop.Dispose();
        loop.Invoking(l => l.Stop()).Should().NotThrow();
    }

    [UffdWriteProtectFact]
    public void A_handler_that_throws_ends_run_with_its_exception()
    {
        using var ram = new ProtectedRam();
        using var loop = new UserfaultLoop(ram.Uffd, ram.Memory);
        Exception? caught = null;
        var runner = new Thread(() =>
        {
            try { loop.Run((_, _, _) => throw new InvalidOperationException("handler failed"), () => false); }
            catch (Exception e) { caught = e; }
        });
        runner.Start();
        var writer = new Thread(() => ram.Write(5, 0, 1)) { IsBackground = true };
        writer.Start();
        runner.Join(TimeSpan.FromSeconds(20)).Should().BeTrue();
        caught.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be("handler failed");
        // The owner's failure path: no one serves faults any more, so protection goes and the writer finishes.
        ram.Region.WriteProtectAll(ram.Uffd, protect: false);
        writer.Join(TimeSpan.FromSeconds(20)).Should().BeTrue();
    }

    [UffdWriteProtectFact]
    public void A_garbage_collection_while_a_host_write_waits_for_its_fault_completes()
    {
        using var ram = new ProtectedRam();
        using var loop = new UserfaultLoop(ram.Uffd, ram.Memory);
        using var inHandler = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var runner = new Thread(() => loop.Run((region, page, _) =>
        {
            inHandler.Set();
            release.Wait(); // the fault stays unserved while the collection runs
            ram.Memory.Regions[region].WriteProtect(ram.Uffd, page, 1, protect: false);
        }, () => false));
        runner.Start();
        var writer = new Thread(() => ram.Write(9, 8, 0x5A)) { IsBackground = true };
        writer.Start();
        inHandler.Wait(TimeSpan.FromSeconds(20)).Should().BeTrue();

        // The writer is blocked on its page. Had it faulted in managed code, the runtime could not stop it and this
        // collection would never finish (a hang here is that defect back).
        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        GC.WaitForPendingFinalizers();

        release.Set();
        writer.Join(TimeSpan.FromSeconds(20)).Should().BeTrue();
        loop.Stop();
        runner.Join(TimeSpan.FromSeconds(20)).Should().BeTrue();
        ram.Memory.Read<byte>(new GuestAddress(9 * GuestMemory.PageSize + 8)).Should().Be(0x5A);
    }
}
