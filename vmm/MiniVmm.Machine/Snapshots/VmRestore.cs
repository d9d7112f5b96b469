using Microsoft.Extensions.Logging;
using MiniVmm.Core.Memory;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;
using MiniVmm.Snapshot.State;
using KvmSharp.Interop;

namespace MiniVmm.Machine.Snapshots;

public sealed record RestoreOptions
{
    public SerialTarget Serial { get; init; } = new SerialTarget.Stdio();
    /// <summary>Restore on a host whose CPU model differs from the one recorded (CPUID and MSRs may not match).</summary>
    public bool AllowCpuMismatch { get; init; }
}

/// <summary>
/// Eager restore: every check that can fail runs before a kernel object exists (file, config, device state); then the
/// VM is built from the recorded config, pages are loaded with their checksums verified, and state is applied.
/// </summary>
public static class VmRestore
{
    public static Vm Restore(string path, RestoreOptions options, ILoggerFactory loggers)
    {
        var log = loggers.CreateLogger("MiniVmm.Restore");
        using var file = SnapshotFile.Open(path);
        var recorded = RecordedVmConfig.FromJson(file.Info.VmConfig);
        CheckCompatible(file, recorded, options);
        var sections = file.Sections.ToDictionary(s => s.Id);
        var devices = DecodeDevices(sections);

        var config = new VmConfig
        {
            KernelPath = recorded.KernelPath.Length > 0 ? recorded.KernelPath : path,
            CommandLine = recorded.CommandLine,
            MemoryBytes = recorded.MemoryBytes,
            Vcpus = recorded.Vcpus,
            HugePages = recorded.HugePages,
            Serial = options.Serial,
            AppendTscKhz = false,
        };
        var vm = Vm.CreateEmpty(config, loggers, devices);
        try
        {
            LoadMemory(file, vm.Memory);
            ApplyVmState(vm, sections);
            foreach (var t in vm.VcpuThreads)
                t.Invoke(v => { vm.StateCapture.Restore(v, sections, log); return 0; });
            foreach (var v in vm.Vcpus) v.TryNotifyClockPaused();
            log.LogInformation("restored {Path}: {Vcpus} vCPU(s), {Mem} MiB", path, recorded.Vcpus, recorded.MemoryBytes >> 20);
            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    private static void CheckCompatible(SnapshotFile file, RecordedVmConfig recorded, RestoreOptions options)
    {
        var regions = file.Info.Regions;
        if (regions.Count != 1 || regions[0].GuestAddress != 0 || regions[0].Size != recorded.MemoryBytes)
            throw new StateRestoreException($"the snapshot's memory layout ({string.Join(", ", regions.Select(r => $"0x{r.GuestAddress:x}+{r.Size}"))}) does not match its recorded {recorded.MemoryBytes}-byte RAM");
        if (recorded.Vcpus < 1 || recorded.Vcpus > VmConfig.MaxVcpus)
            throw new StateRestoreException($"the snapshot records {recorded.Vcpus} vCPUs; 1..{VmConfig.MaxVcpus} supported");
        string host = RecordedVmConfig.HostCpuModel();
        if (!options.AllowCpuMismatch && file.Info.HostCpuModel != host)
            throw new StateRestoreException($"the snapshot was taken on a '{file.Info.HostCpuModel}' host; this one is '{host}' (CPUID and MSRs may differ; pass --allow-cpu-mismatch to try anyway)");
    }

    private static Vm.RestoredDevices DecodeDevices(Dictionary<string, StateSection> sections)
    {
        try
        {
            return new Vm.RestoredDevices(
                sections.TryGetValue("dev.serial-com1", out var s) ? DeviceStateCodec.DecodeSerial(s.Data) : null,
                sections.TryGetValue("dev.debug-exit", out var d) ? DeviceStateCodec.DecodeDebugExit(d.Data) : null,
                sections.TryGetValue("dev.control", out var c) ? DeviceStateCodec.DecodeControl(c.Data) : null);
        }
        catch (FormatException e)
        {
            throw new StateRestoreException("device state in the snapshot is malformed: " + e.Message, e);
        }
    }

    /// <summary>Reads each present page straight into guest RAM (absent pages stay zero); checksums are verified per page.</summary>
    private static void LoadMemory(SnapshotFile file, GuestMemory memory)
    {
        for (int ri = 0; ri < memory.Regions.Count; ri++)
        {
            var region = memory.Regions[ri];
            for (long page = 0; page < region.PageCount; page++)
                if (file.IsPresent(ri, page))
                    file.ReadPage(ri, page, region.GetSpan((ulong)page * GuestMemory.PageSize, (int)GuestMemory.PageSize));
        }
    }

    private static void ApplyVmState(Vm vm, Dictionary<string, StateSection> sections)
    {
        byte[] Need(string id) => sections.TryGetValue(id, out var s) ? s.Data : throw new StateRestoreException($"the snapshot has no {id} section");
        vm.KvmVm.SetIrqChip(AbiBytes.To<kvm_irqchip>(Need("vm.pic0"), "vm.pic0"));
        vm.KvmVm.SetIrqChip(AbiBytes.To<kvm_irqchip>(Need("vm.pic1"), "vm.pic1"));
        vm.KvmVm.SetIrqChip(AbiBytes.To<kvm_irqchip>(Need("vm.ioapic"), "vm.ioapic"));
        vm.KvmVm.SetPit2(AbiBytes.To<kvm_pit_state2>(Need("vm.pit2"), "vm.pit2"));
        // kvmclock goes back to the recorded value before any vCPU runs, so the guest sees no jump backwards.
        vm.KvmVm.SetClock(AbiBytes.To<kvm_clock_data>(Need("vm.clock"), "vm.clock"));
    }
}
