using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp.Tests;

/// <summary>Struct sizes and key field offsets against the x86-64 kernel ABI.</summary>
public sealed unsafe class StructLayoutTests
{
    private static int Offset<T>(ref T s, ref byte field) => (int)Unsafe.ByteOffset(ref Unsafe.As<T, byte>(ref s), ref field);

    [Fact]
    public void Struct_sizes_match_the_kernel_abi()
    {
        sizeof(kvm_userspace_memory_region).Should().Be(32);
        sizeof(kvm_regs).Should().Be(144);
        sizeof(kvm_segment).Should().Be(24);
        sizeof(kvm_dtable).Should().Be(16);
        sizeof(kvm_sregs).Should().Be(312);
        sizeof(kvm_fpu).Should().Be(416);
        sizeof(kvm_msr_entry).Should().Be(16);
        sizeof(kvm_msrs).Should().Be(8);
        sizeof(kvm_cpuid_entry2).Should().Be(40);
        sizeof(kvm_cpuid2).Should().Be(8);
        sizeof(kvm_mp_state).Should().Be(4);
        sizeof(kvm_lapic_state).Should().Be(1024);
        sizeof(kvm_xsave).Should().Be(4096);
        sizeof(kvm_xcrs).Should().Be(392);
        sizeof(kvm_vcpu_events).Should().Be(64);
        sizeof(kvm_debugregs).Should().Be(128);
        sizeof(kvm_irqchip).Should().Be(520);
        sizeof(kvm_irq_level).Should().Be(8);
        sizeof(kvm_pit_config).Should().Be(64);
        sizeof(kvm_pit_state2).Should().Be(112);
        sizeof(kvm_clock_data).Should().Be(48);
        sizeof(kvm_dirty_log).Should().Be(16);
        sizeof(kvm_enable_cap).Should().Be(104);
        sizeof(kvm_run_io).Should().Be(16);
        sizeof(kvm_ioeventfd).Should().Be(64);
        sizeof(kvm_irqfd).Should().Be(32);
        sizeof(uffdio_api).Should().Be(24);
        sizeof(uffdio_range).Should().Be(16);
        sizeof(uffdio_register).Should().Be(32);
        sizeof(uffdio_writeprotect).Should().Be(24);
        sizeof(uffdio_copy).Should().Be(40);
        sizeof(uffdio_zeropage).Should().Be(32);
        sizeof(uffdio_move).Should().Be(40);
        sizeof(UffdMessage).Should().Be(32);
        sizeof(pm_scan_arg).Should().Be(96);
        sizeof(page_region).Should().Be(24);
        sizeof(EpollEvent).Should().Be(12);
        sizeof(sigaction_t).Should().Be(152);
    }

    [Fact]
    public void Key_field_offsets_match_the_kernel_abi()
    {
        var run = new kvm_run();
        Offset(ref run, ref run.immediate_exit).Should().Be(1);
        Offset(ref run, ref Unsafe.As<uint, byte>(ref run.exit_reason)).Should().Be(8);
        Offset(ref run, ref Unsafe.As<ulong, byte>(ref run.cr8)).Should().Be(16);
        Offset(ref run, ref run.exit[0]).Should().Be(KvmRunLayout.ExitUnionOffset);
        Offset(ref run, ref Unsafe.As<ulong, byte>(ref run.kvm_valid_regs)).Should().Be(288);

        var sregs = new kvm_sregs();
        Offset(ref sregs, ref Unsafe.As<kvm_dtable, byte>(ref sregs.gdt)).Should().Be(192);
        Offset(ref sregs, ref Unsafe.As<ulong, byte>(ref sregs.cr0)).Should().Be(224);
        Offset(ref sregs, ref Unsafe.As<ulong, byte>(ref sregs.efer)).Should().Be(264);
        Offset(ref sregs, ref Unsafe.As<ulong, byte>(ref sregs.interrupt_bitmap[0])).Should().Be(280);

        var regs = new kvm_regs();
        Offset(ref regs, ref Unsafe.As<ulong, byte>(ref regs.rip)).Should().Be(128);

        var fpu = new kvm_fpu();
        Offset(ref fpu, ref Unsafe.As<uint, byte>(ref fpu.mxcsr)).Should().Be(408);

        var mmio = new kvm_run_mmio();
        Offset(ref mmio, ref Unsafe.As<uint, byte>(ref mmio.len)).Should().Be(16);
        Offset(ref mmio, ref mmio.is_write).Should().Be(20);

        // uffd_msg: event at 0, pagefault.flags at 8, .address at 16, .feat.ptid at 24.
        var msg = new UffdMessage(UffdMessage.PageFaultEvent, flags: 3, address: 0x1122334455667788, threadId: 0xAABBCCDD);
        var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<UffdMessage>(in msg));
        bytes[0].Should().Be(0x12);
        BitConverter.ToUInt64(bytes[8..]).Should().Be(3);
        BitConverter.ToUInt64(bytes[16..]).Should().Be(0x1122334455667788);
        BitConverter.ToUInt32(bytes[24..]).Should().Be(0xAABBCCDD);
        msg.IsPageFault.Should().BeTrue();
        msg.IsWrite.Should().BeTrue();
        msg.IsWriteProtectFault.Should().BeTrue();
        var ev = new EpollEvent(EpollEvents.Readable | EpollEvents.EdgeTriggered, 0x0102030405060708);
        var evBytes = MemoryMarshal.AsBytes(new ReadOnlySpan<EpollEvent>(in ev));
        BitConverter.ToUInt32(evBytes).Should().Be(0x80000001);
        BitConverter.ToUInt64(evBytes[4..]).Should().Be(0x0102030405060708, "struct epoll_event is packed: data follows events at 4");

        var scan = new pm_scan_arg();
        Offset(ref scan, ref Unsafe.As<ulong, byte>(ref scan.walk_end)).Should().Be(32);
        Offset(ref scan, ref Unsafe.As<ulong, byte>(ref scan.max_pages)).Should().Be(56);
        Offset(ref scan, ref Unsafe.As<ulong, byte>(ref scan.return_mask)).Should().Be(88);
        var region = new page_region();
        Offset(ref region, ref Unsafe.As<ulong, byte>(ref region.categories)).Should().Be(16);

        var clock = new kvm_clock_data();
        Offset(ref clock, ref Unsafe.As<ulong, byte>(ref clock.host_tsc)).Should().Be(24);

        var act = new sigaction_t();
        Offset(ref act, ref Unsafe.As<int, byte>(ref act.sa_flags)).Should().Be(136);
        Offset(ref act, ref Unsafe.As<nint, byte>(ref act.sa_restorer)).Should().Be(144);
    }
}
