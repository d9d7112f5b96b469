using KvmSharp.Abi;

namespace MiniVmm.Machine.Vcpus;

/// <summary>
/// Per-vCPU CPUID from KVM_GET_SUPPORTED_CPUID: what the host and KVM can virtualize, with the topology fields that
/// differ per vCPU (initial APIC ID in leaf 1, x2APIC ID in leaves 0xB/0x1F) and the logical CPU count filled in.
/// </summary>
public static class CpuidTable
{
    private const uint Leaf1EcxHypervisor = 1u << 31;

    public static kvm_cpuid_entry2[] ForVcpu(IReadOnlyList<kvm_cpuid_entry2> supported, int vcpuIndex, int vcpuCount)
    {
        var entries = supported.ToArray();
        for (int i = 0; i < entries.Length; i++)
        {
            ref var e = ref entries[i];
            switch (e.function)
            {
                case 1:
                    e.ebx = (e.ebx & 0x0000ffff) | ((uint)Math.Min(vcpuCount, 255) << 16) | ((uint)vcpuIndex << 24);
                    e.ecx |= Leaf1EcxHypervisor;
                    e.edx |= 1u << 28; // HTT: the logical-count field is valid
                    break;
                case 0xb:
                case 0x1f:
                    e.edx = (uint)vcpuIndex;
                    break;
            }
        }
        return entries;
    }
}
