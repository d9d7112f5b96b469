namespace KvmSharp.Tests;

public sealed class ThreadSchedulingTests
{
    [Fact]
    public void A_thread_can_become_real_time_and_back_and_no_other_thread_changes()
    {
        // CI and this project's machines run as root: real-time scheduling must be granted there.
        int before = PolicyOf("self");
        (Errno Set, int During, Errno Reset, int After) seen = default;
        var thread = new Thread(() =>
        {
            var set = ThreadScheduling.TrySetCurrentThreadRealtime(1);
            int during = PolicyOf("thread-self");
            var reset = ThreadScheduling.TrySetCurrentThreadNormal();
            seen = (set, during, reset, PolicyOf("thread-self"));
        });
        thread.Start();
        thread.Join();

        seen.Set.Should().Be(Errno.None, "the tests run with CAP_SYS_NICE (as root)");
        seen.During.Should().Be(1, "SCHED_FIFO");
        seen.Reset.Should().Be(Errno.None);
        seen.After.Should().Be(0, "SCHED_OTHER");
        PolicyOf("self").Should().Be(before, "only the calling thread changed");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    public void Priorities_outside_the_real_time_range_are_refused(int priority) =>
        FluentActions.Invoking(() => ThreadScheduling.TrySetCurrentThreadRealtime(priority)).Should().Throw<ArgumentOutOfRangeException>();

    /// <summary>Field 41 of /proc/…/stat: the scheduling policy (after the parenthesised command name).</summary>
    private static int PolicyOf(string which)
    {
        string stat = File.ReadAllText($"/proc/{which}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[41 - 3], System.Globalization.CultureInfo.InvariantCulture);
    }
}
