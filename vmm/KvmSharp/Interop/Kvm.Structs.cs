using System.Runtime.InteropServices;

namespace KvmSharp.Interop;

// Blittable copies of <linux/kvm.h> (x86-64) structs, named as in the header. Sizes and offsets are asserted in tests.
#pragma warning disable CS0649 // fields are written by the kernel

[StructLayout(LayoutKind.Sequential)]
public struct kvm_userspace_memory_region
{
    public uint slot;
    public uint flags;
    public ulong guest_phys_addr;
    public ulong memory_size;
    public ulong userspace_addr;
}

[StructLayout(LayoutKind.Sequential)]
public struct kvm_regs
{
    public ulong rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    public ulong r8, r9, r10, r11, r12, r13, r14, r15;
    public ulong rip, rflags;
}

[StructLayout(LayoutKind.Sequential)]
public struct kvm_segment
{
    public ulong @base;
    public uint limit;
    public ushort selector;
    public byte type, present, dpl, db, s, l, g, avl, unusable, padding;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_dtable
{
    public ulong @base;
    public ushort limit;
    public fixed ushort padding[3];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_sregs
{
    public kvm_segment cs, ds, es, fs, gs, ss, tr, ldt;
    public kvm_dtable gdt, idt;
    public ulong cr0, cr2, cr3, cr4, cr8, efer, apic_base;
    public fixed ulong interrupt_bitmap[4];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_fpu
{
    public fixed byte fpr[128];
    public ushort fcw, fsw;
    public byte ftwx, pad1;
    public ushort last_opcode;
    public ulong last_ip, last_dp;
    public fixed byte xmm[256];
    public uint mxcsr, pad2;
}

[StructLayout(LayoutKind.Sequential)]
public struct kvm_msr_entry
{
    public uint index;
    public uint reserved;
    public ulong data;
}

/// <summary>Header of struct kvm_msrs; <c>nmsrs</c> entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_msrs
{
    public uint nmsrs;
    public uint pad;
}

/// <summary>Header of struct kvm_msr_list; <c>nmsrs</c> u32 indices follow.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_msr_list
{
    public uint nmsrs;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_cpuid_entry2
{
    public uint function, index, flags, eax, ebx, ecx, edx;
    public fixed uint padding[3];
}

/// <summary>Header of struct kvm_cpuid2; <c>nent</c> entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct kvm_cpuid2
{
    public uint nent;
    public uint padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct kvm_mp_state
{
    public uint mp_state;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_lapic_state
{
    public fixed byte regs[1024];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_xsave
{
    public fixed uint region[1024];
}

[StructLayout(LayoutKind.Sequential)]
public struct kvm_xcr
{
    public uint xcr;
    public uint reserved;
    public ulong value;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_xcrs
{
    public uint nr_xcrs;
    public uint flags;
    public fixed byte xcrs[16 * 16]; // kvm_xcr[KVM_MAX_XCRS]
    public fixed ulong padding[16];
}

/// <summary>struct kvm_vcpu_events: stored and restored as opaque kernel ABI bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_vcpu_events
{
    public fixed byte bytes[64];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_debugregs
{
    public fixed ulong db[4];
    public ulong dr6, dr7, flags;
    public fixed ulong reserved[9];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_irqchip
{
    public uint chip_id;
    public uint pad;
    public fixed byte chip[512];
}

[StructLayout(LayoutKind.Sequential)]
public struct kvm_irq_level
{
    public uint irq;
    public uint level;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_pit_config
{
    public uint flags;
    public fixed uint pad[15];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_pit_state2
{
    public fixed byte channels[3 * 24]; // kvm_pit_channel_state[3]
    public uint flags;
    public fixed uint reserved[9];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_clock_data
{
    public ulong clock;
    public uint flags;
    public uint pad0;
    public ulong realtime;
    public ulong host_tsc;
    public fixed uint pad[4];
}

[StructLayout(LayoutKind.Sequential)]
public struct kvm_dirty_log
{
    public uint slot;
    public uint padding1;
    public ulong dirty_bitmap; // void __user *
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_enable_cap
{
    public uint cap;
    public uint flags;
    public fixed ulong args[4];
    public fixed byte pad[64];
}

/// <summary>The fixed head of struct kvm_run (the mmap'ed vCPU page). Exit data lives at <see cref="KvmRunLayout.ExitUnionOffset"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_run
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
public struct kvm_run_io
{
    public byte direction;
    public byte size;
    public ushort port;
    public uint count;
    public ulong data_offset;
}

/// <summary>kvm_run.mmio</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_run_mmio
{
    public ulong phys_addr;
    public fixed byte data[8];
    public uint len;
    public byte is_write;
}

/// <summary>kvm_run.internal</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_run_internal
{
    public uint suberror;
    public uint ndata;
    public fixed ulong data[16];
}

public static class KvmRunLayout
{
    public const int ExitUnionOffset = 32;
}

/// <summary>struct kvm_ioeventfd: a guest write to [addr, addr+len) (optionally only of value datamatch) signals fd
/// inside KVM instead of exiting to user space.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_ioeventfd
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
public unsafe struct kvm_irqfd
{
    public uint fd;
    public uint gsi;
    public uint flags;
    public uint resamplefd;
    public fixed byte pad[16];
}
