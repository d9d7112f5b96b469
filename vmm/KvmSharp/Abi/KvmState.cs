using System.Runtime.InteropServices;

namespace KvmSharp.Abi;

// The vCPU and VM state KVM hands out and takes back (KVM_GET_*/KVM_SET_*), as blittable copies of <linux/kvm.h>
// (x86-64) structs named as in the header. These are public on purpose: they are the typed vocabulary of saved VM
// state (the snapshot file stores them byte for byte), like rust-vmm's kvm-bindings. They carry no calls and no
// addresses; the ioctls that fill them stay internal to KvmSharp. Sizes and offsets are asserted in tests.
#pragma warning disable CS0649 // fields are written by the kernel

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

[StructLayout(LayoutKind.Sequential)]
public unsafe struct kvm_cpuid_entry2
{
    public uint function, index, flags, eax, ebx, ecx, edx;
    public fixed uint padding[3];
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
