using KvmSharp;
using Microsoft.Extensions.Logging;
using MiniVmm.Core.Bus;
using MiniVmm.Core.Memory;
using MiniVmm.Core.Runtime;
using MiniVmm.Machine.Diagnostics;

namespace MiniVmm.Machine;

/// <summary>
/// Turns KVM exits into bus accesses and VM stop requests. Runs on vCPU threads; nothing the guest does here throws:
/// unmapped accesses are counted and logged at a bounded rate, fatal exits stop the VM with a report.
/// </summary>
internal sealed class VmExitDispatcher(
    Bus pio, Bus mmio, GuestMemory memory, Func<VmExitStatus, bool> requestStop, Func<bool> isStopping, ILogger log)
    : IVcpuExitHandler
{
    private readonly UnmappedAccessLog _pioLog = UnmappedAccessLog.For(pio, log);
    private readonly UnmappedAccessLog _mmioLog = UnmappedAccessLog.For(mmio, log);

    public UnmappedAccessLog PioLog => _pioLog;
    public UnmappedAccessLog MmioLog => _mmioLog;

    public VcpuAction Handle(Vcpu vcpu, VcpuExit exit)
    {
        switch (exit.Kind)
        {
            case VcpuExitKind.IoOut:
            case VcpuExitKind.IoIn:
                HandlePio(exit);
                break;
            case VcpuExitKind.MmioRead:
                if (!mmio.TryRead(exit.Address, exit.Data)) _mmioLog.OnUnmappedRead(exit.Address, exit.Data);
                break;
            case VcpuExitKind.MmioWrite:
                if (!mmio.TryWrite(exit.Address, exit.Data)) _mmioLog.OnUnmappedWrite(exit.Address, exit.Data);
                break;
            case VcpuExitKind.Hlt:
                // Only without an in-kernel LAPIC; ours has one, so a HLT exit means the guest stopped for good.
                return Fatal(vcpu, VmStopReason.TripleFault, "guest halted with no way to wake (KVM_EXIT_HLT)");
            case VcpuExitKind.Shutdown:
                return Fatal(vcpu, VmStopReason.TripleFault, "triple fault (KVM_EXIT_SHUTDOWN)");
            case VcpuExitKind.InternalError:
                string sub = exit.InternalSuberror == 1 ? "emulation failure" : $"internal error, suberror {exit.InternalSuberror}";
                return Fatal(vcpu, VmStopReason.EmulationFailure, $"KVM {sub}");
            case VcpuExitKind.FailEntry:
                return Fatal(vcpu, VmStopReason.EmulationFailure, $"KVM could not enter the guest (hardware reason 0x{exit.Address:x})");
            case VcpuExitKind.SystemEvent:
                // type 1 = shutdown, 2 = reset, 3 = crash
                var reason = exit.Address == 2 ? VmStopReason.Reset : VmStopReason.TripleFault;
                return Fatal(vcpu, reason, $"system event {exit.Address}");
            default:
                return Fatal(vcpu, VmStopReason.InternalError, $"unexpected exit reason {exit.RawReason}");
        }
        return isStopping() ? VcpuAction.Stop : VcpuAction.Continue;
    }

    private void HandlePio(VcpuExit exit)
    {
        // String I/O (rep outsb/insb) arrives as Count items back to back.
        int count = Math.Max(1, exit.Count);
        int size = exit.Data.Length / count;
        for (int i = 0; i < count; i++)
        {
            var item = exit.Data.Slice(i * size, size);
            if (exit.Kind == VcpuExitKind.IoOut)
            {
                if (!pio.TryWrite(exit.Address, item)) _pioLog.OnUnmappedWrite(exit.Address, item);
            }
            else if (!pio.TryRead(exit.Address, item)) _pioLog.OnUnmappedRead(exit.Address, item);
        }
    }

    private VcpuAction Fatal(Vcpu vcpu, VmStopReason reason, string what)
    {
        string report = VcpuCrashReport.Describe(vcpu, memory, what);
        // The status carries the headline and the instruction; the full register dump goes to the log.
        var lines = report.Split('\n');
        string instruction = lines.FirstOrDefault(l => l.TrimStart().StartsWith("instruction:", StringComparison.Ordinal))?.Trim() ?? "";
        if (requestStop(new VmExitStatus(reason, Detail: (lines[0] + "; " + instruction).TrimEnd(' ', ';'))))
            log.LogError("{Report}", report);
        return VcpuAction.Stop;
    }
}
