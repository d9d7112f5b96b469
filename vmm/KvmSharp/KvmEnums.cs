namespace KvmSharp;

/// <summary>KVM capabilities MiniVmm asks about (KVM_CAP_*, the argument of KVM_CHECK_EXTENSION).</summary>
public enum KvmCapability
{
    IrqChip = 0,
    Hlt = 1,
    UserMemory = 3,
    SetTssAddr = 4,
    ExtCpuid = 7,
    NrVcpus = 9,
    NrMemslots = 10,
    IrqFd = 32,
    Pit2 = 33,
    IoEventFd = 36,
    AdjustClock = 39,
    VcpuEvents = 41,
    DebugRegs = 50,
    Xsave = 55,
    Xcrs = 56,
    GetTscKhz = 61,
    MaxVcpus = 66,
    ImmediateExit = 136,
    Xsave2 = 208,
}

/// <summary>The in-kernel interrupt controllers of KVM_GET_IRQCHIP / KVM_SET_IRQCHIP (KVM_IRQCHIP_*).</summary>
public enum IrqChipId : uint
{
    PicMaster = 0,
    PicSlave = 1,
    IoApic = 2,
}

/// <summary>A vCPU's multiprocessing state (KVM_MP_STATE_*).</summary>
public enum VcpuMpState : uint
{
    Runnable = 0,
    Uninitialized = 1,
    InitReceived = 2,
    Halted = 3,
    SipiReceived = 4,
}

/// <summary>Flags of a KVM memory slot (KVM_MEM_*).</summary>
[Flags]
public enum MemorySlotFlags : uint
{
    None = 0,
    LogDirtyPages = 1,
    ReadOnly = 2,
}
