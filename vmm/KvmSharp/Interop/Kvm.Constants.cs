using System.Runtime.CompilerServices;

using KvmSharp.Abi;

namespace KvmSharp.Interop;

/// <summary>Request numbers and constants of &lt;linux/kvm.h&gt; (x86-64), derived with the _IOC formula.</summary>
internal static unsafe class Kvm
{
    public const uint KVMIO = 0xAE;
    public const int KVM_API_VERSION = 12;

    // System ioctls
    public static readonly uint KVM_GET_API_VERSION = Ioc.IO(KVMIO, 0x00);
    public static readonly uint KVM_CREATE_VM = Ioc.IO(KVMIO, 0x01);
    public static readonly uint KVM_GET_MSR_INDEX_LIST = Ioc.IOWR(KVMIO, 0x02, (uint)sizeof(kvm_msr_list));
    public static readonly uint KVM_CHECK_EXTENSION = Ioc.IO(KVMIO, 0x03);
    public static readonly uint KVM_GET_VCPU_MMAP_SIZE = Ioc.IO(KVMIO, 0x04);
    public static readonly uint KVM_GET_SUPPORTED_CPUID = Ioc.IOWR(KVMIO, 0x05, (uint)sizeof(kvm_cpuid2));

    // VM ioctls
    public static readonly uint KVM_CREATE_VCPU = Ioc.IO(KVMIO, 0x41);
    public static readonly uint KVM_GET_DIRTY_LOG = Ioc.IOW(KVMIO, 0x42, (uint)sizeof(kvm_dirty_log));
    public static readonly uint KVM_SET_USER_MEMORY_REGION = Ioc.IOW(KVMIO, 0x46, (uint)sizeof(kvm_userspace_memory_region));
    public static readonly uint KVM_SET_TSS_ADDR = Ioc.IO(KVMIO, 0x47);
    public static readonly uint KVM_SET_IDENTITY_MAP_ADDR = Ioc.IOW(KVMIO, 0x48, sizeof(ulong));
    public static readonly uint KVM_CREATE_IRQCHIP = Ioc.IO(KVMIO, 0x60);
    public static readonly uint KVM_IRQ_LINE = Ioc.IOW(KVMIO, 0x61, (uint)sizeof(kvm_irq_level));
    public static readonly uint KVM_GET_IRQCHIP = Ioc.IOWR(KVMIO, 0x62, (uint)sizeof(kvm_irqchip));
    public static readonly uint KVM_SET_IRQCHIP = Ioc.IOR(KVMIO, 0x63, (uint)sizeof(kvm_irqchip));
    public static readonly uint KVM_IRQFD = Ioc.IOW(KVMIO, 0x76, (uint)sizeof(kvm_irqfd));
    public static readonly uint KVM_CREATE_PIT2 = Ioc.IOW(KVMIO, 0x77, (uint)sizeof(kvm_pit_config));
    public static readonly uint KVM_IOEVENTFD = Ioc.IOW(KVMIO, 0x79, (uint)sizeof(kvm_ioeventfd));
    public static readonly uint KVM_SET_CLOCK = Ioc.IOW(KVMIO, 0x7b, (uint)sizeof(kvm_clock_data));
    public static readonly uint KVM_GET_CLOCK = Ioc.IOR(KVMIO, 0x7c, (uint)sizeof(kvm_clock_data));
    public static readonly uint KVM_GET_PIT2 = Ioc.IOR(KVMIO, 0x9f, (uint)sizeof(kvm_pit_state2));
    public static readonly uint KVM_SET_PIT2 = Ioc.IOW(KVMIO, 0xa0, (uint)sizeof(kvm_pit_state2));
    public static readonly uint KVM_ENABLE_CAP = Ioc.IOW(KVMIO, 0xa3, (uint)sizeof(kvm_enable_cap));

    // vCPU ioctls
    public static readonly uint KVM_RUN = Ioc.IO(KVMIO, 0x80);
    public static readonly uint KVM_GET_REGS = Ioc.IOR(KVMIO, 0x81, (uint)sizeof(kvm_regs));
    public static readonly uint KVM_SET_REGS = Ioc.IOW(KVMIO, 0x82, (uint)sizeof(kvm_regs));
    public static readonly uint KVM_GET_SREGS = Ioc.IOR(KVMIO, 0x83, (uint)sizeof(kvm_sregs));
    public static readonly uint KVM_SET_SREGS = Ioc.IOW(KVMIO, 0x84, (uint)sizeof(kvm_sregs));
    public static readonly uint KVM_GET_MSRS = Ioc.IOWR(KVMIO, 0x88, (uint)sizeof(kvm_msrs));
    public static readonly uint KVM_SET_MSRS = Ioc.IOW(KVMIO, 0x89, (uint)sizeof(kvm_msrs));
    public static readonly uint KVM_GET_FPU = Ioc.IOR(KVMIO, 0x8c, (uint)sizeof(kvm_fpu));
    public static readonly uint KVM_SET_FPU = Ioc.IOW(KVMIO, 0x8d, (uint)sizeof(kvm_fpu));
    public static readonly uint KVM_GET_LAPIC = Ioc.IOR(KVMIO, 0x8e, (uint)sizeof(kvm_lapic_state));
    public static readonly uint KVM_SET_LAPIC = Ioc.IOW(KVMIO, 0x8f, (uint)sizeof(kvm_lapic_state));
    public static readonly uint KVM_SET_CPUID2 = Ioc.IOW(KVMIO, 0x90, (uint)sizeof(kvm_cpuid2));
    public static readonly uint KVM_GET_MP_STATE = Ioc.IOR(KVMIO, 0x98, (uint)sizeof(kvm_mp_state));
    public static readonly uint KVM_SET_MP_STATE = Ioc.IOW(KVMIO, 0x99, (uint)sizeof(kvm_mp_state));
    public static readonly uint KVM_GET_VCPU_EVENTS = Ioc.IOR(KVMIO, 0x9f, (uint)sizeof(kvm_vcpu_events));
    public static readonly uint KVM_SET_VCPU_EVENTS = Ioc.IOW(KVMIO, 0xa0, (uint)sizeof(kvm_vcpu_events));
    public static readonly uint KVM_GET_DEBUGREGS = Ioc.IOR(KVMIO, 0xa1, (uint)sizeof(kvm_debugregs));
    public static readonly uint KVM_SET_DEBUGREGS = Ioc.IOW(KVMIO, 0xa2, (uint)sizeof(kvm_debugregs));
    public static readonly uint KVM_SET_TSC_KHZ = Ioc.IO(KVMIO, 0xa2);
    public static readonly uint KVM_GET_TSC_KHZ = Ioc.IO(KVMIO, 0xa3);
    public static readonly uint KVM_GET_XSAVE = Ioc.IOR(KVMIO, 0xa4, (uint)sizeof(kvm_xsave));
    public static readonly uint KVM_SET_XSAVE = Ioc.IOW(KVMIO, 0xa5, (uint)sizeof(kvm_xsave));
    public static readonly uint KVM_GET_XCRS = Ioc.IOR(KVMIO, 0xa6, (uint)sizeof(kvm_xcrs));
    public static readonly uint KVM_SET_XCRS = Ioc.IOW(KVMIO, 0xa7, (uint)sizeof(kvm_xcrs));
    public static readonly uint KVM_KVMCLOCK_CTRL = Ioc.IO(KVMIO, 0xad);
    public static readonly uint KVM_GET_XSAVE2 = Ioc.IOR(KVMIO, 0xcf, (uint)sizeof(kvm_xsave));

    // Capabilities (KVM_CHECK_EXTENSION arguments)
    public const int KVM_CAP_IRQCHIP = 0;
    public const int KVM_CAP_HLT = 1;
    public const int KVM_CAP_USER_MEMORY = 3;
    public const int KVM_CAP_SET_TSS_ADDR = 4;
    public const int KVM_CAP_EXT_CPUID = 7;
    public const int KVM_CAP_NR_VCPUS = 9;
    public const int KVM_CAP_NR_MEMSLOTS = 10;
    public const int KVM_CAP_IRQFD = 32;
    public const int KVM_CAP_PIT2 = 33;
    public const int KVM_CAP_IOEVENTFD = 36;
    public const int KVM_CAP_IMMEDIATE_EXIT = 136;
    public const int KVM_CAP_ADJUST_CLOCK = 39;
    public const int KVM_CAP_VCPU_EVENTS = 41;
    public const int KVM_CAP_DEBUGREGS = 50;
    public const int KVM_CAP_XSAVE = 55;
    public const int KVM_CAP_XCRS = 56;
    public const int KVM_CAP_GET_TSC_KHZ = 61;
    public const int KVM_CAP_MAX_VCPUS = 66;
    public const int KVM_CAP_XSAVE2 = 208;

    // Exit reasons
    public const uint KVM_EXIT_UNKNOWN = 0;
    public const uint KVM_EXIT_EXCEPTION = 1;
    public const uint KVM_EXIT_IO = 2;
    public const uint KVM_EXIT_HYPERCALL = 3;
    public const uint KVM_EXIT_DEBUG = 4;
    public const uint KVM_EXIT_HLT = 5;
    public const uint KVM_EXIT_MMIO = 6;
    public const uint KVM_EXIT_IRQ_WINDOW_OPEN = 7;
    public const uint KVM_EXIT_SHUTDOWN = 8;
    public const uint KVM_EXIT_FAIL_ENTRY = 9;
    public const uint KVM_EXIT_INTR = 10;
    public const uint KVM_EXIT_INTERNAL_ERROR = 17;
    public const uint KVM_EXIT_SYSTEM_EVENT = 24;

    public const byte KVM_EXIT_IO_IN = 0;
    public const byte KVM_EXIT_IO_OUT = 1;

    public const uint KVM_INTERNAL_ERROR_EMULATION = 1;

    public const uint KVM_MP_STATE_RUNNABLE = 0;
    public const uint KVM_MP_STATE_UNINITIALIZED = 1;
    public const uint KVM_MP_STATE_INIT_RECEIVED = 2;
    public const uint KVM_MP_STATE_HALTED = 3;
    public const uint KVM_MP_STATE_SIPI_RECEIVED = 4;

    public const uint KVM_MEM_LOG_DIRTY_PAGES = 1;

    public const uint KVM_IRQCHIP_PIC_MASTER = 0;
    public const uint KVM_IRQCHIP_PIC_SLAVE = 1;
    public const uint KVM_IRQCHIP_IOAPIC = 2;

    public const uint KVM_CLOCK_TSC_STABLE = 2;

    public const uint KVM_IOEVENTFD_FLAG_DATAMATCH = 1u << 0;
    public const uint KVM_IOEVENTFD_FLAG_PIO = 1u << 1;
    public const uint KVM_IOEVENTFD_FLAG_DEASSIGN = 1u << 2;

    public const uint KVM_IRQFD_FLAG_DEASSIGN = 1u << 0;
    public const uint KVM_IRQFD_FLAG_RESAMPLE = 1u << 1;
}
