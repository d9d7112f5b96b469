using System.Runtime.InteropServices;

namespace KvmSharp.Interop;

// Blittable copies of <linux/kvm.h> (x86-64) structs, named as in the header. Sizes and offsets are asserted in tests.
#pragma warning disable CS0649 // fields are written by the kernel

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_userspace_memory_region
{
    public uint slot;
    public uint flags;
    public ulong guest_phys_addr;
    public ulong memory_size;
    public ulong userspace_addr;
}

/// <summary>Header of struct kvm_msrs; <c>nmsrs</c> entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msrs
{
    public uint nmsrs;
    public uint pad;
}

/// <summary>Header of struct kvm_msr_list; <c>nmsrs</c> u32 indices follow.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msr_list
{
    public uint nmsrs;
}

/// <summary>Header of struct kvm_cpuid2; <c>nent</c> entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_cpuid2
{
    public uint nent;
    public uint padding;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_mp_state
{
    public uint mp_state;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_irq_level
{
    public uint irq;
    public uint level;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_pit_config
{
    public uint flags;
    public fixed uint pad[15];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_dirty_log
{
    public uint slot;
    public uint padding1;
    public ulong dirty_bitmap; // void __user *
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_enable_cap
{
    public uint cap;
    public uint flags;
    public fixed ulong args[4];
    public fixed byte pad[64];
}

/// <summary>The fixed head of struct kvm_run (the mmap'ed vCPU page). Exit data lives at <see cref="KvmRunLayout.ExitUnionOffset"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_run
{
    public byte request_interrupt_window;
    public byte immediate_exit;
    public fixed byte padding1[6];
    public uint exit_reason;
    public byte ready_for_interrupt_injection;
    public byte if_flag;
    public ushort flags;
    public ulong cr8;
    public ulong apic_base;
    public fixed byte exit[256]; // the anonymous union: io, mmio, internal, system_event, ...
    public ulong kvm_valid_regs;
    public ulong kvm_dirty_regs;
}

/// <summary>kvm_run.io</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_io
{
    public byte direction;
    public byte size;
    public ushort port;
    public uint count;
    public ulong data_offset;
}

/// <summary>kvm_run.mmio</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_run_mmio
{
    public ulong phys_addr;
    public fixed byte data[8];
    public uint len;
    public byte is_write;
}

/// <summary>kvm_run.internal</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_run_internal
{
    public uint suberror;
    public uint ndata;
    public fixed ulong data[16];
}

internal static class KvmRunLayout
{
    public const int ExitUnionOffset = 32;
}

/// <summary>struct kvm_ioeventfd: a guest write to [addr, addr+len) (optionally only of value datamatch) signals fd
/// inside KVM instead of exiting to user space.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_ioeventfd
{
    public ulong datamatch;
    public ulong addr;
    public uint len;
    public int fd;
    public uint flags;
    public fixed byte pad[36];
}

/// <summary>struct kvm_irqfd: a write to fd injects an interrupt on gsi.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_irqfd
{
    public uint fd;
    public uint gsi;
    public uint flags;
    public uint resamplefd;
    public fixed byte pad[16];
}
