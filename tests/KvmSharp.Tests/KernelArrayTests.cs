using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp.Tests;

/// <summary>The flexible-array buffer behind KVM_GET/SET_MSRS and the CPUID calls, without KVM.</summary>
public sealed unsafe class KernelArrayTests
{
    [Fact]
    public void Entries_follow_the_header_and_the_count_is_its_first_field()
    {
        kvm_msr_entry[] msrs = [new() { index = 0x10, data = 1 }, new() { index = 0x174, data = 2 }];
        using var array = KernelArray<kvm_msr_entry>.Of(sizeof(kvm_msrs), msrs);
        var header = (kvm_msrs*)array.Pointer;
        header->nmsrs.Should().Be(2);
        var first = (kvm_msr_entry*)((byte*)array.Pointer + sizeof(kvm_msrs));
        first[1].index.Should().Be(0x174);
        first[1].data.Should().Be(2);
    }

    [Fact]
    public void A_count_the_kernel_reports_beyond_the_capacity_reads_no_further_than_the_buffer()
    {
        using var list = new KernelArray<uint>(sizeof(kvm_msr_list), 4);
        list.Entries.Fill(7);
        list.Count = 1_000_000; // as if the kernel (or a bug) wrote a count larger than the buffer
        list.ToArray(list.Count).Should().HaveCount(4);
        list.ToArray(-1).Should().BeEmpty();
        list.ToArray(2).Should().Equal(7u, 7u);
    }
}
