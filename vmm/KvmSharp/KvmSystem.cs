using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>Owns the /dev/kvm file descriptor: capability checks, system-wide queries, VM creation.</summary>
public sealed unsafe class KvmSystem : IDisposable
{
    private readonly FileDescriptor _fd;

    private KvmSystem(FileDescriptor fd) => _fd = fd;

    public static KvmSystem Open(string path = "/dev/kvm")
    {
        int fd = Libc.open(path, Libc.O_RDWR | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            Errno errno = LastErrno.Get();
            string hint = errno switch
            {
                Errno.ENOENT => "KVM is not available: no /dev/kvm (load kvm_intel/kvm_amd, or enable nested virtualization)",
                Errno.EACCES or Errno.EPERM => "no permission to open /dev/kvm: run as root or add the user to the 'kvm' group",
                _ => "cannot open /dev/kvm",
            };
            throw new KvmException("open(" + path + ")", errno, hint);
        }
        var system = new KvmSystem(new FileDescriptor(fd));
        int version = system.Ioctl(Kvm.KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION");
        if (version != Kvm.KVM_API_VERSION)
        {
            system.Dispose();
            throw new KvmException("KVM_GET_API_VERSION", Errno.EINVAL, $"kernel KVM API version {version}, expected {Kvm.KVM_API_VERSION}");
        }
        return system;
    }

    /// <summary>KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value.</summary>
    public int CheckExtension(KvmCapability capability) => Math.Max(0, Libc.ioctl_int(_fd, Kvm.KVM_CHECK_EXTENSION, (int)capability));

    /// <summary>Fails with one message naming every capability MiniVmm cannot run without.</summary>
    public void RequireCapabilities(params KvmCapability[] required)
    {
        var missing = required.Where(c => CheckExtension(c) <= 0).Select(CapabilityName).ToList();
        if (missing.Count > 0)
            throw new KvmException("KVM_CHECK_EXTENSION", Errno.EINVAL, "this kernel's KVM lacks required capabilities: " + string.Join(", ", missing));
    }

    /// <summary>The kernel's name of a capability, for messages: <c>KVM_CAP_PIT2</c>.</summary>
    public static string CapabilityName(KvmCapability capability) =>
        "KVM_CAP_" + System.Text.RegularExpressions.Regex.Replace(capability.ToString(), "(?<=[a-z0-9])(?=[A-Z])", "_").ToUpperInvariant();

    public int VcpuMmapSize => Ioctl(Kvm.KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");

    /// <summary>KVM_GET_SUPPORTED_CPUID, growing the buffer until the kernel's table fits.</summary>
    public kvm_cpuid_entry2[] GetSupportedCpuid()
    {
        for (int n = 64; n <= 4096; n *= 2)
        {
            using var cpuid = new KernelArray<kvm_cpuid_entry2>(sizeof(kvm_cpuid2), n);
            if (Libc.ioctl(_fd, Kvm.KVM_GET_SUPPORTED_CPUID, cpuid.Pointer) < 0)
            {
                Errno errno = LastErrno.Get();
                if (errno == Errno.E2BIG) continue;
                throw new KvmException("KVM_GET_SUPPORTED_CPUID", errno);
            }
            return cpuid.ToArray(cpuid.Count);
        }
        throw new KvmException("KVM_GET_SUPPORTED_CPUID", Errno.E2BIG, "table larger than 4096 entries");
    }

    /// <summary>KVM_GET_MSR_INDEX_LIST: the MSRs that KVM saves and restores for a vCPU.</summary>
    public uint[] GetMsrIndexList()
    {
        for (int n = 256; n <= 16384; n *= 2)
        {
            using var list = new KernelArray<uint>(sizeof(kvm_msr_list), n);
            if (Libc.ioctl(_fd, Kvm.KVM_GET_MSR_INDEX_LIST, list.Pointer) < 0)
            {
                Errno errno = LastErrno.Get();
                if (errno == Errno.E2BIG) continue;
                throw new KvmException("KVM_GET_MSR_INDEX_LIST", errno);
            }
            return list.ToArray(list.Count);
        }
        throw new KvmException("KVM_GET_MSR_INDEX_LIST", Errno.E2BIG);
    }

    public VirtualMachine CreateVm()
    {
        int fd = Ioctl(Kvm.KVM_CREATE_VM, 0, "KVM_CREATE_VM");
        return new VirtualMachine(new FileDescriptor(fd), VcpuMmapSize);
    }

    private int Ioctl(uint request, nint arg, string name) => KvmException.Check(Libc.ioctl_int(_fd, request, arg), name);

    public void Dispose() => _fd.Dispose();
}
