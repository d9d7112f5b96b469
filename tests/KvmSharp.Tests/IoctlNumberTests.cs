using KvmSharp.Interop;

namespace KvmSharp.Tests;

/// <summary>
/// Every request number is recomputed here from the _IOC formula with the struct size the kernel headers give
/// (literal numbers, not sizeof of our own structs), and a few against the hex values the headers expand to.
/// </summary>
public sealed class IoctlNumberTests
{
    private const uint None = 0, W = 1, R = 2, RW = 3;

    private static uint IOC(uint dir, uint type, uint nr, uint size) => (dir << 30) | (size << 16) | (type << 8) | nr;

    public static TheoryData<string, uint, uint, uint, uint, uint> Requests => new()
    {
        { "KVM_GET_API_VERSION", Kvm.KVM_GET_API_VERSION, None, 0xAE, 0x00, 0 },
        { "KVM_CREATE_VM", Kvm.KVM_CREATE_VM, None, 0xAE, 0x01, 0 },
        { "KVM_GET_MSR_INDEX_LIST", Kvm.KVM_GET_MSR_INDEX_LIST, RW, 0xAE, 0x02, 4 },
        { "KVM_CHECK_EXTENSION", Kvm.KVM_CHECK_EXTENSION, None, 0xAE, 0x03, 0 },
        { "KVM_GET_VCPU_MMAP_SIZE", Kvm.KVM_GET_VCPU_MMAP_SIZE, None, 0xAE, 0x04, 0 },
        { "KVM_GET_SUPPORTED_CPUID", Kvm.KVM_GET_SUPPORTED_CPUID, RW, 0xAE, 0x05, 8 },
        { "KVM_CREATE_VCPU", Kvm.KVM_CREATE_VCPU, None, 0xAE, 0x41, 0 },
        { "KVM_GET_DIRTY_LOG", Kvm.KVM_GET_DIRTY_LOG, W, 0xAE, 0x42, 16 },
        { "KVM_SET_USER_MEMORY_REGION", Kvm.KVM_SET_USER_MEMORY_REGION, W, 0xAE, 0x46, 32 },
        { "KVM_SET_TSS_ADDR", Kvm.KVM_SET_TSS_ADDR, None, 0xAE, 0x47, 0 },
        { "KVM_SET_IDENTITY_MAP_ADDR", Kvm.KVM_SET_IDENTITY_MAP_ADDR, W, 0xAE, 0x48, 8 },
        { "KVM_CREATE_IRQCHIP", Kvm.KVM_CREATE_IRQCHIP, None, 0xAE, 0x60, 0 },
        { "KVM_IRQ_LINE", Kvm.KVM_IRQ_LINE, W, 0xAE, 0x61, 8 },
        { "KVM_GET_IRQCHIP", Kvm.KVM_GET_IRQCHIP, RW, 0xAE, 0x62, 520 },
        { "KVM_SET_IRQCHIP", Kvm.KVM_SET_IRQCHIP, R, 0xAE, 0x63, 520 },
        { "KVM_IRQFD", Kvm.KVM_IRQFD, W, 0xAE, 0x76, 32 },
        { "KVM_IOEVENTFD", Kvm.KVM_IOEVENTFD, W, 0xAE, 0x79, 64 },
        { "KVM_CREATE_PIT2", Kvm.KVM_CREATE_PIT2, W, 0xAE, 0x77, 64 },
        { "KVM_SET_CLOCK", Kvm.KVM_SET_CLOCK, W, 0xAE, 0x7b, 48 },
        { "KVM_GET_CLOCK", Kvm.KVM_GET_CLOCK, R, 0xAE, 0x7c, 48 },
        { "KVM_GET_PIT2", Kvm.KVM_GET_PIT2, R, 0xAE, 0x9f, 112 },
        { "KVM_SET_PIT2", Kvm.KVM_SET_PIT2, W, 0xAE, 0xa0, 112 },
        { "KVM_ENABLE_CAP", Kvm.KVM_ENABLE_CAP, W, 0xAE, 0xa3, 104 },
        { "KVM_RUN", Kvm.KVM_RUN, None, 0xAE, 0x80, 0 },
        { "KVM_GET_REGS", Kvm.KVM_GET_REGS, R, 0xAE, 0x81, 144 },
        { "KVM_SET_REGS", Kvm.KVM_SET_REGS, W, 0xAE, 0x82, 144 },
        { "KVM_GET_SREGS", Kvm.KVM_GET_SREGS, R, 0xAE, 0x83, 312 },
        { "KVM_SET_SREGS", Kvm.KVM_SET_SREGS, W, 0xAE, 0x84, 312 },
        { "KVM_GET_MSRS", Kvm.KVM_GET_MSRS, RW, 0xAE, 0x88, 8 },
        { "KVM_SET_MSRS", Kvm.KVM_SET_MSRS, W, 0xAE, 0x89, 8 },
        { "KVM_GET_FPU", Kvm.KVM_GET_FPU, R, 0xAE, 0x8c, 416 },
        { "KVM_SET_FPU", Kvm.KVM_SET_FPU, W, 0xAE, 0x8d, 416 },
        { "KVM_GET_LAPIC", Kvm.KVM_GET_LAPIC, R, 0xAE, 0x8e, 1024 },
        { "KVM_SET_LAPIC", Kvm.KVM_SET_LAPIC, W, 0xAE, 0x8f, 1024 },
        { "KVM_SET_CPUID2", Kvm.KVM_SET_CPUID2, W, 0xAE, 0x90, 8 },
        { "KVM_GET_MP_STATE", Kvm.KVM_GET_MP_STATE, R, 0xAE, 0x98, 4 },
        { "KVM_SET_MP_STATE", Kvm.KVM_SET_MP_STATE, W, 0xAE, 0x99, 4 },
        { "KVM_GET_VCPU_EVENTS", Kvm.KVM_GET_VCPU_EVENTS, R, 0xAE, 0x9f, 64 },
        { "KVM_SET_VCPU_EVENTS", Kvm.KVM_SET_VCPU_EVENTS, W, 0xAE, 0xa0, 64 },
        { "KVM_GET_DEBUGREGS", Kvm.KVM_GET_DEBUGREGS, R, 0xAE, 0xa1, 128 },
        { "KVM_SET_DEBUGREGS", Kvm.KVM_SET_DEBUGREGS, W, 0xAE, 0xa2, 128 },
        { "KVM_SET_TSC_KHZ", Kvm.KVM_SET_TSC_KHZ, None, 0xAE, 0xa2, 0 },
        { "KVM_GET_TSC_KHZ", Kvm.KVM_GET_TSC_KHZ, None, 0xAE, 0xa3, 0 },
        { "KVM_GET_XSAVE", Kvm.KVM_GET_XSAVE, R, 0xAE, 0xa4, 4096 },
        { "KVM_SET_XSAVE", Kvm.KVM_SET_XSAVE, W, 0xAE, 0xa5, 4096 },
        { "KVM_GET_XCRS", Kvm.KVM_GET_XCRS, R, 0xAE, 0xa6, 392 },
        { "KVM_SET_XCRS", Kvm.KVM_SET_XCRS, W, 0xAE, 0xa7, 392 },
        { "KVM_KVMCLOCK_CTRL", Kvm.KVM_KVMCLOCK_CTRL, None, 0xAE, 0xad, 0 },
        { "KVM_GET_XSAVE2", Kvm.KVM_GET_XSAVE2, R, 0xAE, 0xcf, 4096 },
        { "UFFDIO_API", Uffd.UFFDIO_API, RW, 0xAA, 0x3F, 24 },
        { "UFFDIO_REGISTER", Uffd.UFFDIO_REGISTER, RW, 0xAA, 0x00, 32 },
        { "UFFDIO_UNREGISTER", Uffd.UFFDIO_UNREGISTER, R, 0xAA, 0x01, 16 },
        { "UFFDIO_WAKE", Uffd.UFFDIO_WAKE, R, 0xAA, 0x02, 16 },
        { "UFFDIO_COPY", Uffd.UFFDIO_COPY, RW, 0xAA, 0x03, 40 },
        { "UFFDIO_ZEROPAGE", Uffd.UFFDIO_ZEROPAGE, RW, 0xAA, 0x04, 32 },
        { "UFFDIO_MOVE", Uffd.UFFDIO_MOVE, RW, 0xAA, 0x05, 40 },
        { "UFFDIO_WRITEPROTECT", Uffd.UFFDIO_WRITEPROTECT, RW, 0xAA, 0x06, 24 },
        { "PAGEMAP_SCAN", PageMap.PAGEMAP_SCAN, RW, 0x66 /* 'f' */, 16, 96 },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public void Request_number_matches_the_IOC_formula(string name, uint actual, uint dir, uint type, uint nr, uint size)
    {
        actual.Should().Be(IOC(dir, type, nr, size), name);
    }

    [Fact]
    public void Known_values_from_the_kernel_headers_match()
    {
        Kvm.KVM_RUN.Should().Be(0xAE80u);
        Kvm.KVM_CREATE_VM.Should().Be(0xAE01u);
        Kvm.KVM_GET_REGS.Should().Be(0x8090AE81u);
        Kvm.KVM_SET_SREGS.Should().Be(0x4138AE84u);
        Kvm.KVM_SET_USER_MEMORY_REGION.Should().Be(0x4020AE46u);
        Kvm.KVM_GET_SUPPORTED_CPUID.Should().Be(0xC008AE05u);
        Kvm.KVM_IRQFD.Should().Be(0x4020AE76u);
        Kvm.KVM_IOEVENTFD.Should().Be(0x4040AE79u);
        Uffd.UFFDIO_API.Should().Be(0xC018AA3Fu);
        Uffd.UFFDIO_REGISTER.Should().Be(0xC020AA00u);
        Uffd.UFFDIO_WRITEPROTECT.Should().Be(0xC018AA06u);
        Uffd.UFFDIO_MOVE.Should().Be(0xC028AA05u);
        PageMap.PAGEMAP_SCAN.Should().Be(0xC0606610u);
    }

    [Fact]
    public void Userfaultfd_features_missing_from_old_headers_have_their_kernel_values()
    {
        Uffd.UFFD_FEATURE_WP_UNPOPULATED.Should().Be(1UL << 13);
        Uffd.UFFD_FEATURE_WP_ASYNC.Should().Be(1UL << 15);
        Uffd.UFFD_FEATURE_MOVE.Should().Be(1UL << 16);
        Uffd.UFFD_FEATURE_THREAD_ID.Should().Be(1UL << 8);
        Uffd.UFFD_FEATURE_PAGEFAULT_FLAG_WP.Should().Be(1UL);
    }

    [Fact]
    public void Pagemap_scan_flags_and_categories_have_their_kernel_values()
    {
        // include/uapi/linux/fs.h (Linux 6.7; PAGE_IS_SOFT_DIRTY 6.9).
        PageMap.PM_SCAN_WP_MATCHING.Should().Be(1UL << 0);
        PageMap.PM_SCAN_CHECK_WPASYNC.Should().Be(1UL << 1);
        PageMap.PAGE_IS_WPALLOWED.Should().Be(1UL << 0);
        PageMap.PAGE_IS_WRITTEN.Should().Be(1UL << 1);
        PageMap.PAGE_IS_FILE.Should().Be(1UL << 2);
        PageMap.PAGE_IS_PRESENT.Should().Be(1UL << 3);
        PageMap.PAGE_IS_SWAPPED.Should().Be(1UL << 4);
        PageMap.PAGE_IS_PFNZERO.Should().Be(1UL << 5);
        PageMap.PAGE_IS_HUGE.Should().Be(1UL << 6);
        PageMap.PAGE_IS_SOFT_DIRTY.Should().Be(1UL << 7);
        Uffd.UFFD_FEATURE_POISON.Should().Be(1UL << 14);
    }
}
