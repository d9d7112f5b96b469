using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Tests.Memory;

public sealed class HostWriteLogTests
{
    [Fact]
    public void Host_writes_are_logged_per_page_only_while_the_log_is_on_and_taking_clears_them()
    {
        using var memory = GuestMemory.CreateAnonymous(64 * 4096);
        memory.Write<ulong>(new GuestAddress(0x1000), 1); // before the log: not recorded
        memory.StartHostWriteLog();
        memory.Write<uint>(new GuestAddress(0x2ffe), 7);                 // straddles pages 2 and 3
        memory.Write(new GuestAddress(0x8000), new byte[4096 * 2]);      // pages 8, 9
        memory.NoteHostWrite(new GuestAddress(63 * 4096 + 10), 1);       // a device's span write, page 63
        memory.Clear(new GuestAddress(0x5000), 10);                      // page 5
        Span<ulong> bitmap = stackalloc ulong[1];
        bitmap[0] = 1UL << 40;                         // what KVM reported stays
        memory.TakeHostWrites(0, bitmap);
        bitmap[0].Should().Be(1UL << 2 | 1UL << 3 | 1UL << 5 | 1UL << 8 | 1UL << 9 | 1UL << 40 | 1UL << 63);
        bitmap[0] = 0;
        memory.TakeHostWrites(0, bitmap);
        bitmap[0].Should().Be(0, "taking clears the log");
        memory.StopHostWriteLog();
        memory.Write<ulong>(new GuestAddress(0x1000), 2);
        memory.TakeHostWrites(0, bitmap);
        bitmap[0].Should().Be(0);
    }
}
