using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>Owns a KVM VM file descriptor: memory slots, the in-kernel irqchip and PIT, VM-wide state, vCPU creation.</summary>
public sealed unsafe class VirtualMachine : IDisposable
{
    private readonly FileDescriptor _fd;
    private readonly int _vcpuMmapSize;
    private readonly Dictionary<uint, MemoryMapping> _slotMappings = [];

    internal VirtualMachine(FileDescriptor fd, int vcpuMmapSize)
    {
        _fd = fd;
        _vcpuMmapSize = vcpuMmapSize;
    }

    /// <summary>
    /// Maps <paramref name="memory"/> as guest physical [guestAddress, +length) in slot <paramref name="slot"/>
    /// (again for the same slot: changes its flags). The VM holds a reference on the mapping until it is closed, so guest
    /// RAM is never unmapped while KVM may still access it.
    /// </summary>
    public void SetUserMemoryRegion(uint slot, ulong guestAddress, MemoryMapping memory, MemorySlotFlags flags = MemorySlotFlags.None)
    {
        using var lease = memory.Lease(0, memory.Length);
        var region = new kvm_userspace_memory_region
        {
            slot = slot, flags = (uint)flags, guest_phys_addr = guestAddress, memory_size = memory.Length, userspace_addr = lease.Address,
        };
        Check(Libc.ioctl(_fd, Kvm.KVM_SET_USER_MEMORY_REGION, &region), "KVM_SET_USER_MEMORY_REGION");
        lock (_slotMappings)
        {
            if (_slotMappings.ContainsKey(slot)) return;
            bool added = false;
            memory.DangerousAddRef(ref added);
            _slotMappings[slot] = memory;
        }
    }

    public void SetTssAddress(uint address) => Check(Libc.ioctl_int(_fd, Kvm.KVM_SET_TSS_ADDR, (nint)address), "KVM_SET_TSS_ADDR");

    public void SetIdentityMapAddress(ulong address) => Check(Libc.ioctl(_fd, Kvm.KVM_SET_IDENTITY_MAP_ADDR, &address), "KVM_SET_IDENTITY_MAP_ADDR");

    public void CreateIrqChip() => Check(Libc.ioctl_int(_fd, Kvm.KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP");

    public void CreatePit2()
    {
        var config = new kvm_pit_config();
        Check(Libc.ioctl(_fd, Kvm.KVM_CREATE_PIT2, &config), "KVM_CREATE_PIT2");
    }

    public void SetIrqLine(uint irq, bool level)
    {
        var l = new kvm_irq_level { irq = irq, level = level ? 1u : 0u };
        Check(Libc.ioctl(_fd, Kvm.KVM_IRQ_LINE, &l), "KVM_IRQ_LINE");
    }

    public kvm_irqchip GetIrqChip(IrqChipId chipId)
    {
        var chip = new kvm_irqchip { chip_id = (uint)chipId };
        Check(Libc.ioctl(_fd, Kvm.KVM_GET_IRQCHIP, &chip), "KVM_GET_IRQCHIP");
        return chip;
    }

    public void SetIrqChip(in kvm_irqchip chip)
    {
        fixed (kvm_irqchip* p = &chip) Check(Libc.ioctl(_fd, Kvm.KVM_SET_IRQCHIP, p), "KVM_SET_IRQCHIP");
    }

    public kvm_pit_state2 GetPit2()
    {
        kvm_pit_state2 s;
        Check(Libc.ioctl(_fd, Kvm.KVM_GET_PIT2, &s), "KVM_GET_PIT2");
        return s;
    }

    public void SetPit2(in kvm_pit_state2 state)
    {
        fixed (kvm_pit_state2* p = &state) Check(Libc.ioctl(_fd, Kvm.KVM_SET_PIT2, p), "KVM_SET_PIT2");
    }

    public kvm_clock_data GetClock()
    {
        kvm_clock_data c;
        Check(Libc.ioctl(_fd, Kvm.KVM_GET_CLOCK, &c), "KVM_GET_CLOCK");
        return c;
    }

    public void SetClock(in kvm_clock_data clock)
    {
        // Only the clock value is meaningful to set; KVM rejects unknown flags.
        var c = new kvm_clock_data { clock = clock.clock };
        Check(Libc.ioctl(_fd, Kvm.KVM_SET_CLOCK, &c), "KVM_SET_CLOCK");
    }

    /// <summary>KVM_GET_DIRTY_LOG for a slot into <paramref name="bitmap"/> (one bit per page), clearing the kernel's log.</summary>
    public void GetDirtyLog(uint slot, Span<ulong> bitmap)
    {
        fixed (ulong* p = bitmap)
        {
            var log = new kvm_dirty_log { slot = slot, dirty_bitmap = (ulong)p };
            Check(Libc.ioctl(_fd, Kvm.KVM_GET_DIRTY_LOG, &log), "KVM_GET_DIRTY_LOG");
        }
    }

    /// <summary>
    /// KVM_IOEVENTFD: guest writes of <paramref name="length"/> bytes to <paramref name="address"/> (only of value
    /// <paramref name="dataMatch"/> when given) signal the returned eventfd instead of exiting to user space.
    /// </summary>
    public IoEventFd CreateIoEventFd(ulong address, uint length, ulong? dataMatch = null, bool pio = false) =>
        new(_fd, address, length, dataMatch, pio);

    /// <summary>KVM_IRQFD: an eventfd that injects an interrupt on <paramref name="gsi"/> of the in-kernel irqchip.</summary>
    public IrqFd CreateIrqFd(uint gsi) => new(_fd, gsi);

    public Vcpu CreateVcpu(int index)
    {
        int fd = Check(Libc.ioctl_int(_fd, Kvm.KVM_CREATE_VCPU, index), "KVM_CREATE_VCPU");
        var handle = new FileDescriptor(fd);
        try
        {
            var run = MemoryMapping.OfFile(handle, (ulong)_vcpuMmapSize, 0, writable: true, shared: true);
            return new Vcpu(index, handle, run);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static int Check(int rc, string name) => KvmException.Check(rc, name);

    public void Dispose()
    {
        _fd.Dispose();
        // Closing the VM fd drops KVM's use of the slots (once the vCPUs are closed too); then the mappings may go.
        lock (_slotMappings)
        {
            foreach (var mapping in _slotMappings.Values) mapping.DangerousRelease();
            _slotMappings.Clear();
        }
    }
}
