using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio.Queue;

namespace MiniVmm.Devices.Tests.Virtio;

public sealed class SplitQueueTests : IDisposable
{
    private const ushort Size = 16;
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(1 << 20);
    private readonly MockQueue _driver;

    public SplitQueueTests() => _driver = new MockQueue(_memory, Size);

    public void Dispose() => _memory.Dispose();

    private SplitQueue Queue(bool eventIdx = false, bool indirect = false, ulong maxChainBytes = 256UL << 20) =>
        new(_memory, _driver.Layout, 256, eventIdx, indirect, maxChainBytes: maxChainBytes);

    [Fact]
    public void Pops_a_chain_readable_first_and_returns_it_in_the_used_ring()
    {
        var q = Queue();
        q.TryPop(out _).Should().BeFalse();
        ulong a = _driver.Allocate(16), b = _driver.Allocate(512), c = _driver.Allocate(1);
        ushort head = _driver.AddChain((a, 16, false), (b, 512, true), (c, 1, true));
        q.Pending().Should().Be(1);
        q.TryPop(out var chain).Should().BeTrue();
        chain.Head.Should().Be(head);
        chain.Buffers.Should().Equal(new VirtqBuffer(new GuestAddress(a), 16, false), new VirtqBuffer(new GuestAddress(b), 512, true), new VirtqBuffer(new GuestAddress(c), 1, true));
        chain.ReadableCount.Should().Be(1);
        chain.ReadableBytes.Should().Be(16);
        chain.WritableBytes.Should().Be(513);
        q.AddUsed(chain.Head, 513);
        _driver.UsedIdx.Should().Be(1);
        _driver.Used(0).Id.Should().Be(head);
        _driver.Used(0).Length.Should().Be(513);
        q.TryPop(out _).Should().BeFalse();
    }

    [Fact]
    public void Ring_indices_wrap_at_2_pow_16()
    {
        var q = new SplitQueue(_memory, _driver.Layout, 256, false, false, nextAvail: 65535, nextUsed: 65535);
        _driver.SetAvailIdx(65535);
        ulong a = _driver.Allocate(8);
        _driver.AddChain((a, 8, true));
        _driver.AvailIdx.Should().Be(0);
        q.TryPop(out var chain).Should().BeTrue();
        q.NextAvail.Should().Be(0);
        q.AddUsed(chain.Head, 8);
        _driver.UsedIdx.Should().Be(0);
        q.NextUsed.Should().Be(0);
    }

    [Fact]
    public void An_available_index_further_ahead_than_the_queue_size_is_refused()
    {
        var q = Queue();
        _driver.SetAvailIdx(Size + 1);
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*ahead*");
    }

    [Fact]
    public void A_looping_chain_is_refused()
    {
        var q = Queue();
        ulong a = _driver.Allocate(8);
        _driver.WriteDescriptor(MockQueue.DescAddress, 0, a, 8, VirtqDescriptor.FlagNext, 1);
        _driver.WriteDescriptor(MockQueue.DescAddress, 1, a, 8, VirtqDescriptor.FlagNext, 0);
        _driver.Publish(0);
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*longer*");
    }

    [Theory]
    [InlineData(0x10_0000UL - 4, 8u)]         // crosses the end of RAM
    [InlineData(0x4000_0000UL, 1u)]            // far outside
    [InlineData(ulong.MaxValue - 2, 16u)]      // address + length wraps
    public void A_buffer_outside_guest_ram_is_refused(ulong address, uint length)
    {
        var q = Queue();
        _driver.AddChain((address, length, true));
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*outside guest RAM*");
    }

    [Fact]
    public void A_head_or_next_index_outside_the_table_is_refused()
    {
        var q = Queue();
        _driver.Publish(Size);
        var head = () => q.TryPop(out _);
        head.Should().Throw<VirtqueueException>().WithMessage("*head*outside*");

        var q2 = new SplitQueue(_memory, _driver.Layout, 256, false, false, nextAvail: 1);
        ulong a = _driver.Allocate(8);
        _driver.WriteDescriptor(MockQueue.DescAddress, 3, a, 8, VirtqDescriptor.FlagNext, Size);
        _driver.Publish(3);
        var next = () => q2.TryPop(out _);
        next.Should().Throw<VirtqueueException>().WithMessage("*next index*");
    }

    [Fact]
    public void A_readable_buffer_after_a_writable_one_is_refused()
    {
        var q = Queue();
        ulong a = _driver.Allocate(8);
        _driver.AddChain((a, 8, true), (a, 8, false));
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*readable buffer follows*");
    }

    [Fact]
    public void A_chain_larger_than_the_byte_limit_is_refused()
    {
        var q = Queue(maxChainBytes: 4096);
        ulong a = _driver.Allocate(4096);
        _driver.AddChain((a, 4096, false), (a, 1, true));
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*larger than 4096*");
    }

    [Fact]
    public void Indirect_tables_work_when_negotiated()
    {
        var q = Queue(indirect: true);
        ulong a = _driver.Allocate(16), b = _driver.Allocate(100);
        ushort head = _driver.AddIndirectChain((a, 16, false), (b, 100, true));
        q.TryPop(out var chain).Should().BeTrue();
        chain.Head.Should().Be(head);
        chain.Buffers.Should().Equal(new VirtqBuffer(new GuestAddress(a), 16, false), new VirtqBuffer(new GuestAddress(b), 100, true));
    }

    [Fact]
    public void An_indirect_table_needs_no_alignment_as_linux_kmallocs_it_8_byte_aligned()
    {
        var q = Queue(indirect: true);
        ulong a = _driver.Allocate(16), b = _driver.Allocate(100);
        ulong table = _driver.Allocate(40, alignment: 16) + 8;
        _driver.WriteDescriptor(table, 0, a, 16, VirtqDescriptor.FlagNext, 1);
        _driver.WriteDescriptor(table, 1, b, 100, VirtqDescriptor.FlagWrite, 0);
        _driver.WriteDescriptor(MockQueue.DescAddress, 0, table, 32, VirtqDescriptor.FlagIndirect, 0);
        _driver.Publish(0);
        q.TryPop(out var chain).Should().BeTrue();
        chain.Buffers.Should().Equal(new VirtqBuffer(new GuestAddress(a), 16, false), new VirtqBuffer(new GuestAddress(b), 100, true));
    }

    [Fact]
    public void Indirect_tables_are_refused_when_not_negotiated()
    {
        var q = Queue(indirect: false);
        ulong a = _driver.Allocate(16);
        _driver.AddIndirectChain((a, 16, true));
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*not negotiated*");
    }

    [Fact]
    public void Nested_indirect_tables_are_refused()
    {
        var q = Queue(indirect: true);
        ulong inner = _driver.Allocate(16);
        ulong outer = _driver.Allocate(16);
        _driver.WriteDescriptor(outer, 0, inner, 16, VirtqDescriptor.FlagIndirect, 0);
        _driver.WriteDescriptor(MockQueue.DescAddress, 0, outer, 16, VirtqDescriptor.FlagIndirect, 0);
        _driver.Publish(0);
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*nests*");
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(24u)]                              // not a multiple of 16
    [InlineData((SplitQueue.MaxIndirectEntries + 1) * 16u)]
    public void Indirect_tables_of_bad_length_are_refused(uint length)
    {
        var q = Queue(indirect: true);
        ulong table = _driver.Allocate(length == 0 ? 16 : length);
        _driver.WriteDescriptor(MockQueue.DescAddress, 0, table, length, VirtqDescriptor.FlagIndirect, 0);
        _driver.Publish(0);
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*indirect table length*");
    }

    [Fact]
    public void An_indirect_descriptor_with_next_or_outside_ram_is_refused()
    {
        var q = Queue(indirect: true);
        ulong table = _driver.Allocate(16);
        _driver.WriteDescriptor(MockQueue.DescAddress, 0, table, 16, VirtqDescriptor.FlagIndirect | VirtqDescriptor.FlagNext, 1);
        _driver.Publish(0);
        var withNext = () => q.TryPop(out _);
        withNext.Should().Throw<VirtqueueException>().WithMessage("*NEXT*");

        var q2 = new SplitQueue(_memory, _driver.Layout, 256, false, true, nextAvail: 1);
        _driver.WriteDescriptor(MockQueue.DescAddress, 1, 0x10_0000 - 16, 32, VirtqDescriptor.FlagIndirect, 0);
        _driver.Publish(1);
        var outside = () => q2.TryPop(out _);
        outside.Should().Throw<VirtqueueException>().WithMessage("*indirect table*outside guest RAM*");
    }

    [Fact]
    public void An_indirect_chain_that_loops_is_bounded_by_its_table()
    {
        var q = Queue(indirect: true);
        ulong table = _driver.Allocate(32);
        ulong a = _driver.Allocate(8);
        _driver.WriteDescriptor(table, 0, a, 8, VirtqDescriptor.FlagNext, 1);
        _driver.WriteDescriptor(table, 1, a, 8, VirtqDescriptor.FlagNext, 0);
        _driver.WriteDescriptor(MockQueue.DescAddress, 0, table, 32, VirtqDescriptor.FlagIndirect, 0);
        _driver.Publish(0);
        var act = () => q.TryPop(out _);
        act.Should().Throw<VirtqueueException>().WithMessage("*longer*");
    }

    [Theory]
    [InlineData((ushort)0, 0x1000UL, 0x3000UL, 0x4000UL, "*power of two*")]
    [InlineData((ushort)12, 0x1000UL, 0x3000UL, 0x4000UL, "*power of two*")]
    [InlineData((ushort)512, 0x1000UL, 0x3000UL, 0x4000UL, "*maximum*")]
    [InlineData((ushort)16, 0x1008UL, 0x3000UL, 0x4000UL, "*16-byte aligned*")]
    [InlineData((ushort)16, 0x1000UL, 0x3001UL, 0x4000UL, "*2-byte aligned*")]
    [InlineData((ushort)16, 0x1000UL, 0x3000UL, 0x4002UL, "*4-byte aligned*")]
    [InlineData((ushort)16, 0xFFF10UL, 0x3000UL, 0x4000UL, "*descriptor table*outside*")]
    [InlineData((ushort)16, 0x1000UL, 0xFFFF0UL, 0x4000UL, "*available ring*outside*")]
    [InlineData((ushort)16, 0x1000UL, 0x3000UL, 0x2_0000_0000UL, "*used ring*outside*")]
    public void Bad_layouts_are_refused(ushort size, ulong desc, ulong avail, ulong used, string message)
    {
        var layout = new QueueLayout(size, new GuestAddress(desc), new GuestAddress(avail), new GuestAddress(used));
        layout.Check(_memory, 256).Should().Match(message);
        var act = () => new SplitQueue(_memory, layout, 256, false, false);
        act.Should().Throw<VirtqueueException>();
    }

    [Fact]
    public void Without_event_idx_the_no_interrupt_flag_suppresses_interrupts()
    {
        var q = Queue();
        q.NeedsInterrupt().Should().BeTrue();
        _driver.SetAvailFlags(SplitQueue.AvailNoInterrupt);
        q.NeedsInterrupt().Should().BeFalse();
    }

    [Fact]
    public void With_event_idx_interrupts_follow_used_event_and_avail_event_tracks_consumption()
    {
        var q = Queue(eventIdx: true);
        ulong a = _driver.Allocate(8);
        for (int i = 0; i < 3; i++) _driver.AddChain((a, 8, true));
        _driver.SetUsedEvent(1); // interrupt me once the used index passes 1
        q.TryPop(out var c0).Should().BeTrue();
        _driver.AvailEvent.Should().Be(1);
        q.AddUsed(c0.Head, 0);
        q.NeedsInterrupt().Should().BeFalse(); // used idx 1: not past event 1 yet
        q.TryPop(out var c1).Should().BeTrue();
        q.AddUsed(c1.Head, 0);
        q.NeedsInterrupt().Should().BeTrue(); // used idx 2 passed 1
        q.TryPop(out var c2).Should().BeTrue();
        _driver.AvailEvent.Should().Be(3);
        q.AddUsed(c2.Head, 0);
        q.NeedsInterrupt().Should().BeFalse(); // event 1 already signalled
    }

    [Fact]
    public void Popping_allocates_nothing_in_steady_state()
    {
        var q = Queue(eventIdx: true, indirect: true);
        ulong a = _driver.Allocate(16), b = _driver.Allocate(512), c = _driver.Allocate(64);
        void Publish()
        {
            for (int i = 0; i < Size / 4; i++)
            {
                _driver.AddChain((a, 16, false), (b, 512, true));
                _driver.AddIndirectChain((a, 16, false), (b, 512, true), (c, 64, true));
            }
        }
        ulong PopAll()
        {
            ulong bytes = 0;
            while (q.TryPop(out var chain))
            {
                foreach (var buffer in chain.Writable) bytes += buffer.Length;
                bytes += chain.ReadableBytes;
                q.AddUsed(chain.Head, 0);
            }
            q.NeedsInterrupt();
            return bytes;
        }
        Publish();
        PopAll(); // the first pops may JIT-compile and touch statics
        Publish();
        long before = GC.GetAllocatedBytesForCurrentThread();
        ulong popped = PopAll();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        popped.Should().Be((ulong)(Size / 4) * (528 + 592));
        allocated.Should().Be(0, "a queue refills its one chain instead of allocating one per pop");
    }

    [Fact]
    public void The_longest_chain_the_bounds_allow_fits_the_reused_chain()
    {
        // Size - 1 direct descriptors, then an indirect table of the largest size: the most buffers one chain can have.
        var q = Queue(indirect: true);
        ulong data = _driver.Allocate(8);
        for (int i = 0; i < Size - 1; i++)
            _driver.WriteDescriptor(MockQueue.DescAddress, i, data, 8, VirtqDescriptor.FlagNext, (ushort)(i + 1));
        ulong table = _driver.Allocate(16 * SplitQueue.MaxIndirectEntries);
        for (int i = 0; i < SplitQueue.MaxIndirectEntries; i++)
            _driver.WriteDescriptor(table, i, data, 8,
                (ushort)(VirtqDescriptor.FlagWrite | (i + 1 < SplitQueue.MaxIndirectEntries ? VirtqDescriptor.FlagNext : 0)), (ushort)(i + 1));
        _driver.WriteDescriptor(MockQueue.DescAddress, Size - 1, table, 16 * SplitQueue.MaxIndirectEntries, VirtqDescriptor.FlagIndirect, 0);
        _driver.Publish(0);
        q.TryPop(out var chain).Should().BeTrue();
        chain.Buffers.Count.Should().Be(Size - 1 + SplitQueue.MaxIndirectEntries);
        chain.ReadableCount.Should().Be(Size - 1);
        chain.WritableBytes.Should().Be(8UL * SplitQueue.MaxIndirectEntries);
    }
}
