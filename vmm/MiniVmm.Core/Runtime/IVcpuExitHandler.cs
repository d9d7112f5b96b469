using KvmSharp;

namespace MiniVmm.Core.Runtime;

/// <summary>What the run loop does after an exit was handled.</summary>
public enum VcpuAction
{
    Continue,
    /// <summary>The VM is stopping (guest exit, triple fault, fatal error): leave the run loop.</summary>
    Stop,
}

/// <summary>Handles one KVM exit on the vCPU's thread. Must not throw for anything the guest can cause.</summary>
public interface IVcpuExitHandler
{
    VcpuAction Handle(Vcpu vcpu, VcpuExit exit);
}
