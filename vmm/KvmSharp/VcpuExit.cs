using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

public enum VcpuExitKind
{
    /// <summary>KVM_RUN returned EINTR/EAGAIN: a kick (signal or immediate_exit) arrived. Not an error.</summary>
    Interrupted,
    IoIn,
    IoOut,
    MmioRead,
    MmioWrite,
    Hlt,
    Shutdown,
    InternalError,
    FailEntry,
    SystemEvent,
    Other,
}

/// <summary>
/// One exit of KVM_RUN, viewed in place over the vCPU's kvm_run page. <see cref="Data"/> is where an IN/MMIO read must
/// put its value and where an OUT/MMIO write's value is; valid only until the next <see cref="Vcpu.Run"/>.
/// </summary>
public readonly ref struct VcpuExit
{
    public VcpuExitKind Kind { get; }
    public uint RawReason { get; }
    public ulong Address { get; }
    public Span<byte> Data { get; }
    /// <summary>PIO string instructions (rep outsb) repeat an access; data holds Count items of Data.Length/Count bytes.</summary>
    public int Count { get; }
    public uint InternalSuberror { get; }
    public ReadOnlySpan<ulong> InternalData { get; }

    public VcpuExit(VcpuExitKind kind, uint rawReason, ulong address = 0, Span<byte> data = default, int count = 1,
        uint internalSuberror = 0, ReadOnlySpan<ulong> internalData = default)
    {
        Kind = kind;
        RawReason = rawReason;
        Address = address;
        Data = data;
        Count = count;
        InternalSuberror = internalSuberror;
        InternalData = internalData;
    }

    public override string ToString() => Kind switch
    {
        VcpuExitKind.IoIn or VcpuExitKind.IoOut => $"{Kind} port 0x{Address:x} size {Data.Length / Math.Max(1, Count)} x{Count}",
        VcpuExitKind.MmioRead or VcpuExitKind.MmioWrite => $"{Kind} 0x{Address:x} len {Data.Length}",
        _ => $"{Kind} (reason {RawReason})",
    };

    internal static string ReasonName(uint reason) => reason switch
    {
        Kvm.KVM_EXIT_UNKNOWN => "KVM_EXIT_UNKNOWN",
        Kvm.KVM_EXIT_EXCEPTION => "KVM_EXIT_EXCEPTION",
        Kvm.KVM_EXIT_FAIL_ENTRY => "KVM_EXIT_FAIL_ENTRY",
        _ => "exit reason " + reason,
    };
}
