using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Core.Runtime;

namespace MiniVmm.Core.Tests.Runtime;

/// <summary>Init levels with matching teardown: order, late additions, guards that stop a release, failing releases.</summary>
public sealed class OrderedLifetimeTests
{
    private enum Level { Kernel, Memory, Backend, Devices, Threads }

    private sealed class Probe(string name, List<string> released) : IDisposable
    {
        public int Disposals { get; private set; }
        public void Dispose()
        {
            Disposals++;
            released.Add(name);
        }
    }

    [Fact]
    public void Teardown_releases_the_highest_level_first_and_the_last_acquired_first_within_a_level()
    {
        var released = new List<string>();
        var life = new OrderedLifetime<Level>(NullLogger.Instance);
        life.Own(Level.Kernel, new Probe("kvm", released));
        life.Own(Level.Kernel, new Probe("vm", released));
        life.Own(Level.Memory, new Probe("ram", released));
        life.Own(Level.Devices, new Probe("serial", released));
        life.Own(Level.Devices, new Probe("blk", released));
        life.Own(Level.Threads, new Probe("vcpu0", released));

        life.Dispose();

        released.Should().Equal("vcpu0", "blk", "serial", "ram", "vm", "kvm");
    }

    [Fact]
    public void A_resource_added_late_goes_to_its_level_not_to_the_top()
    {
        var released = new List<string>();
        var life = new OrderedLifetime<Level>(NullLogger.Instance);
        life.Own(Level.Memory, new Probe("ram", released));
        life.Own(Level.Threads, new Probe("vcpu0", released));
        life.Own(Level.Backend, new Probe("snapshot file", released));
        life.Own(Level.Backend, new Probe("page server", released)); // reads the file: released before it

        life.Dispose();

        released.Should().Equal("vcpu0", "page server", "snapshot file", "ram");
    }

    [Fact]
    public void A_guard_that_sees_a_running_thread_leaves_everything_below_it_allocated()
    {
        var released = new List<string>();
        var life = new OrderedLifetime<Level>(NullLogger.Instance);
        life.Own(Level.Kernel, new Probe("kvm", released));
        life.Own(Level.Memory, new Probe("ram", released));
        life.Own(Level.Devices, new Probe("blk", released));
        life.Guard(Level.Devices, "device workers", () => false);
        life.Own(Level.Devices, new Probe("net", released)); // added after the guard: the guard still sorts below it

        life.Dispose();

        released.Should().Equal("net", "blk");
        life.LeftResources.Should().BeTrue();
    }

    [Fact]
    public void A_guard_that_sees_its_threads_ended_lets_teardown_continue()
    {
        var released = new List<string>();
        bool ended = false;
        var life = new OrderedLifetime<Level>(NullLogger.Instance);
        life.Own(Level.Memory, new Probe("ram", released));
        life.Guard(Level.Threads, "vCPU threads", () => ended);
        life.OnRelease(Level.Threads, "vcpu0 thread", () => { ended = true; released.Add("vcpu0 thread"); });

        life.TeardownOrder().Should().Equal("vcpu0 thread", "guard: vCPU threads", "Probe");
        life.Dispose();

        released.Should().Equal("vcpu0 thread", "ram");
        life.LeftResources.Should().BeFalse();
    }

    [Fact]
    public void A_release_that_throws_does_not_leak_the_rest_and_teardown_runs_once()
    {
        var released = new List<string>();
        var life = new OrderedLifetime<Level>(NullLogger.Instance);
        var ram = life.Own(Level.Memory, new Probe("ram", released));
        life.OnRelease(Level.Devices, "broken", () => throw new IOException("close failed"));

        life.Dispose();
        life.Dispose();

        released.Should().Equal("ram");
        ram.Disposals.Should().Be(1);
    }

    [Fact]
    public void Adding_after_teardown_began_releases_the_resource_and_throws()
    {
        var released = new List<string>();
        var life = new OrderedLifetime<Level>(NullLogger.Instance);
        life.Dispose();

        var late = new Probe("late", released);
        FluentActions.Invoking(() => life.Own(Level.Backend, late)).Should().Throw<ObjectDisposedException>();
        released.Should().Equal("late");
    }
}
