using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio.Queue;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>
/// Random rings and descriptors (fixed seeds, so a failure reproduces): the parser may only ever answer with
/// <see cref="VirtqueueException"/>, and every buffer it hands out lies inside guest RAM. A GuestMemoryException
/// escaping would mean it touched an address before checking it.
/// </summary>
public sealed class SplitQueueFuzzTests
{
    private const ulong RamSize = 64 * 1024;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Random_rings_never_escape_the_error_path_or_guest_ram(int seed)
    {
        var random = new Random(seed);
        using var memory = GuestMemory.CreateAnonymous(RamSize);
        int chains = 0, errors = 0;
        for (int round = 0; round < 400; round++)
        {
            ushort size = (ushort)(1 << random.Next(0, 9));
            var layout = new QueueLayout(size, new GuestAddress(0x1000), new GuestAddress(0x3000), new GuestAddress(0x6000));
            ushort nextAvail = (ushort)random.Next(65536);
            FillRandom(memory, random, layout, nextAvail);
            var queue = new SplitQueue(memory, layout, 256, eventIndex: random.Next(2) == 0, indirect: random.Next(2) == 0,
                nextAvail: nextAvail, nextUsed: (ushort)random.Next(65536), maxChainBytes: 1 << 20);
            for (int pop = 0; pop < 8; pop++)
            {
                DescriptorChain chain;
                try
                {
                    if (!queue.TryPop(out chain)) break;
                }
                catch (VirtqueueException)
                {
                    errors++;
                    break;
                }
                chains++;
                chain.Head.Should().BeLessThan(size);
                chain.Buffers.Count.Should().BeLessThanOrEqualTo(Math.Max((int)size, SplitQueue.MaxIndirectEntries));
                foreach (var b in chain.Buffers)
                    memory.Contains(b.Address, b.Length).Should().BeTrue($"buffer 0x{b.Address:x}+{b.Length} must be in RAM");
                queue.AddUsed(chain.Head, (uint)chain.WritableBytes);
                queue.NeedsInterrupt();
            }
        }
        // The generator is biased towards plausible values, so both outcomes are exercised.
        chains.Should().BePositive();
        errors.Should().BePositive();
    }

    /// <summary>Random descriptors with addresses that mostly land in (small) RAM, next indices mostly in range, and
    /// indirect tables pointing at other random descriptors.</summary>
    private static void FillRandom(GuestMemory memory, Random random, QueueLayout layout, ushort nextAvail)
    {
        var bytes = new byte[RamSize];
        random.NextBytes(bytes);
        memory.Write(new GuestAddress(0), bytes);
        for (int i = 0; i < layout.Size; i++)
            memory.Write(layout.DescriptorTable + 16UL * (uint)i, RandomDescriptor(random, layout.Size));
        // Indirect tables somewhere in the data area.
        for (int t = 0; t < 8; t++)
        {
            ulong table = 0x8000 + (ulong)random.Next(0, 0x6000) / 16 * 16;
            for (int i = 0; i < 8; i++) memory.Write(new GuestAddress(table + 16UL * (uint)i), RandomDescriptor(random, 8));
        }
        ushort availIdx = (ushort)(random.Next(4) == 0 ? random.Next(65536) : nextAvail + random.Next(0, layout.Size + 1));
        memory.Write(layout.AvailableRing + 2, availIdx);
        for (int i = 0; i < layout.Size; i++)
            memory.Write(layout.AvailableRing + 4 + 2UL * (uint)i, (ushort)(random.Next(4) == 0 ? random.Next(65536) : random.Next(layout.Size)));
    }

    private static VirtqDescriptor RandomDescriptor(Random random, int tableSize)
    {
        ulong address = random.Next(4) switch
        {
            0 => (ulong)random.NextInt64(),
            1 => RamSize - (ulong)random.Next(0, 64),
            _ => (ulong)random.Next(0, (int)RamSize) / 16 * 16,
        };
        uint length = random.Next(3) switch
        {
            0 => (uint)random.Next(),
            1 => (uint)random.Next(0, 4) * 16,
            _ => (uint)random.Next(0, 4096),
        };
        return new VirtqDescriptor
        {
            Address = address,
            Length = length,
            Flags = (ushort)(random.Next(8) == 0 ? random.Next(65536) : random.Next(8)),
            Next = (ushort)(random.Next(8) == 0 ? random.Next(65536) : random.Next(tableSize)),
        };
    }
}
