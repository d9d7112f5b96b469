using System.Runtime.InteropServices;
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
            int errno = Marshal.GetLastPInvokeError();
            string hint = errno switch
            {
                Libc.ENOENT => "KVM is not available: no /dev/kvm (load kvm_intel/kvm_amd, or enable nested virtualization)",
                Libc.EACCES or Libc.EPERM => "no permission to open /dev/kvm: run as root or add the user to the 'kvm' group",
                _ => "cannot open /dev/kvm",
            };
            throw new KvmException("open(" + path + ")", errno, hint);
        }
        var system = new KvmSystem(new FileDescriptor(fd));
        int version = system.Ioctl(Kvm.KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION");
        if (version != Kvm.KVM_API_VERSION)
        {
            system.Dispose();
            throw new KvmException("KVM_GET_API_VERSION", Libc.EINVAL, $"kernel KVM API version {version}, expected {Kvm.KVM_API_VERSION}");
        }
        return system;
    }

    /// <summary>KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value.</summary>
    public int CheckExtension(int capability) => Math.Max(0, Libc.ioctl_int(_fd, Kvm.KVM_CHECK_EXTENSION, capability));

    /// <summary>Fails with one message naming every capability MiniVmm cannot run without.</summary>
    public void RequireCapabilities(params (int Capability, string Name)[] required)
    {
        var missing = required.Where(c => CheckExtension(c.Capability) <= 0).Select(c => c.Name).ToList();
        if (missing.Count > 0)
            throw new KvmException("KVM_CHECK_EXTENSION", Libc.EINVAL, "this kernel's KVM lacks required capabilities: " + string.Join(", ", missing));
    }

    public int VcpuMmapSize => Ioctl(Kvm.KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");

    /// <summary>KVM_GET_SUPPORTED_CPUID, growing the buffer until the kernel's table fits.</summary>
    public kvm_cpuid_entry2[] GetSupportedCpuid()
    {
        for (int n = 64; n <= 4096; n *= 2)
        {
            int size = sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2);
            byte* buf = (byte*)NativeMemory.AllocZeroed((nuint)size);
            try
            {
                ((kvm_cpuid2*)buf)->nent = (uint)n;
                int rc = Libc.ioctl(_fd, Kvm.KVM_GET_SUPPORTED_CPUID, buf);
                if (rc < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == 7 /* E2BIG */) continue;
                    throw new KvmException("KVM_GET_SUPPORTED_CPUID", errno);
                }
                int count = (int)((kvm_cpuid2*)buf)->nent;
                return new ReadOnlySpan<kvm_cpuid_entry2>(buf + sizeof(kvm_cpuid2), count).ToArray();
            }
            finally { NativeMemory.Free(buf); }
        }
        throw new KvmException("KVM_GET_SUPPORTED_CPUID", 7, "table larger than 4096 entries");
    }

    /// <summary>KVM_GET_MSR_INDEX_LIST: the MSRs that KVM saves and restores for a vCPU.</summary>
    public uint[] GetMsrIndexList()
    {
        for (int n = 256; n <= 16384; n *= 2)
        {
            int size = sizeof(kvm_msr_list) + n * sizeof(uint);
            byte* buf = (byte*)NativeMemory.AllocZeroed((nuint)size);
            try
            {
                ((kvm_msr_list*)buf)->nmsrs = (uint)n;
                if (Libc.ioctl(_fd, Kvm.KVM_GET_MSR_INDEX_LIST, buf) < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == 7) continue;
                    throw new KvmException("KVM_GET_MSR_INDEX_LIST", errno);
                }
                return new ReadOnlySpan<uint>(buf + sizeof(kvm_msr_list), (int)((kvm_msr_list*)buf)->nmsrs).ToArray();
            }
            finally { NativeMemory.Free(buf); }
        }
        throw new KvmException("KVM_GET_MSR_INDEX_LIST", 7);
    }

    public VirtualMachine CreateVm()
    {
        int fd = Ioctl(Kvm.KVM_CREATE_VM, 0, "KVM_CREATE_VM");
        return new VirtualMachine(new FileDescriptor(fd), VcpuMmapSize);
    }

    private int Ioctl(uint request, nint arg, string name) => KvmException.Check(Libc.ioctl_int(_fd, request, arg), name);

    public void Dispose() => _fd.Dispose();
}
