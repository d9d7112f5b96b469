namespace MiniVmm.Machine;

/// <summary>
/// The VM's init levels, in the order they are built; teardown releases them in reverse (see
/// <see cref="Core.Runtime.OrderedLifetime{TLevel}"/>). Each level may only use the levels below it.
/// </summary>
internal enum VmLevel
{
    /// <summary>The KVM system and VM fds (irqchip and PIT live in the VM fd).</summary>
    Kvm,
    /// <summary>Guest RAM and its memory slots.</summary>
    Memory,
    /// <summary>What serves or watches RAM: a lazy-restore page server and the snapshot it reads, dirty trackers, uploads.</summary>
    MemoryBackend,
    /// <summary>The main loop: devices and vCPU threads post to it.</summary>
    MainLoop,
    /// <summary>Output sinks, doorbells, irqfds and the devices that use them. Guard: the virtio workers have stopped.</summary>
    Devices,
    /// <summary>The vCPU fds and their kvm_run mappings.</summary>
    Vcpus,
    /// <summary>The threads that run the vCPUs. Guard: every one is out of KVM_RUN and ended.</summary>
    VcpuThreads,
    /// <summary>Serial input from the terminal (started by <see cref="Vm.Run"/>).</summary>
    ConsoleInput,
}
