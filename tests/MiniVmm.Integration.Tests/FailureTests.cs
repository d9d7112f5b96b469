using MiniVmm.Core.Boot;
using MiniVmm.Devices.Virtio.Block;
using MiniVmm.Machine;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>Misbehaving guests and bad input: clear outcomes, never a crash.</summary>
public sealed class FailureTests
{
    [KvmFact]
    public void Triple_fault_stops_the_vm_with_a_distinct_status()
    {
        var (run, _) = GuestRun.Boot(GuestFiles.Write("triple.elf", TinyGuests.TripleFault()));
        using (run)
        {
            var status = run.Start().WaitForExit();
            status.Reason.Should().Be(VmStopReason.TripleFault);
            status.ProcessExitCode.Should().Be(VmExitStatus.ExitTripleFault);
        }
    }

    [KvmFact]
    public void Unmapped_ports_read_as_ones_and_unmapped_mmio_as_zeros_and_the_guest_runs_on()
    {
        var (run, _) = GuestRun.Boot(GuestFiles.Write("unmapped.elf", TinyGuests.UnmappedAccesses()));
        using (run)
        {
            var status = run.Start().WaitForExit();
            status.Reason.Should().Be(VmStopReason.GuestExit);
            status.GuestStatus.Should().Be(0xFF, "PIO reads all ones in the low byte and MMIO reads zero above it");
        }
    }

    [KvmFact]
    public void Instruction_the_emulator_cannot_run_stops_the_vm_with_a_disassembly()
    {
        var (run, _) = GuestRun.Boot(GuestFiles.Write("fninit.elf", TinyGuests.UnsupportedInstruction()));
        using (run)
        {
            var status = run.Start().WaitForExit();
            if (status.Reason == VmStopReason.GuestExit)
            {
                // Hardware virtualization ran the instruction natively: nothing to report.
                status.GuestStatus.Should().Be(0x42);
                return;
            }
            status.Reason.Should().Be(VmStopReason.EmulationFailure);
            status.ProcessExitCode.Should().Be(VmExitStatus.ExitEmulationFailure);
            status.Detail.Should().Contain("fld1", "the report names the instruction KVM could not emulate");
        }
    }

    [KvmFact]
    public void I8042_reset_stops_the_vm_as_a_reset()
    {
        var (run, _) = GuestRun.Boot(GuestFiles.Write("reset.elf", TinyGuests.I8042Reset()));
        using (run)
        {
            run.Start().WaitForExit().Reason.Should().Be(VmStopReason.Reset);
        }
    }

    [KvmFact]
    public void Missing_kernel_is_a_configuration_error()
    {
        var act = () => Vm.Create(new VmConfig { KernelPath = "/nonexistent/kernel.elf" }, GuestRun.Loggers);
        act.Should().Throw<VmConfigException>().WithMessage("*does not exist*");
    }

    [KvmFact]
    public void Non_elf_kernel_is_a_configuration_error()
    {
        string path = GuestFiles.Write("not-elf.bin", "this is not an ELF file at all"u8.ToArray());
        var act = () => Vm.Create(new VmConfig { KernelPath = path }, GuestRun.Loggers);
        act.Should().Throw<VmConfigException>().WithMessage("*ELF*");
    }

    [Fact]
    public void Memory_too_small_is_rejected_before_touching_kvm()
    {
        var act = () => new VmConfig { KernelPath = "x", MemoryBytes = 1 << 20 }.Validate();
        act.Should().Throw<VmConfigException>().WithMessage("*too small*");
    }

    [KvmFact]
    public void Command_line_over_the_limit_is_a_configuration_error()
    {
        var act = () => Vm.Create(new VmConfig { KernelPath = GuestFiles.Hello, CommandLine = new string('x', 5000) }, GuestRun.Loggers);
        act.Should().Throw<VmConfigException>().WithMessage("*command line*");
    }

    [KvmFact]
    public void A_vm_that_fails_late_in_its_build_releases_every_fd_and_thread()
    {
        // The command line is checked last, after RAM, devices (a drive, with its ioeventfd and irqfd) and vCPUs exist.
        string image = GuestFiles.Write("late-failure.img", new byte[1 << 20]);
        var config = new VmConfig
        {
            KernelPath = GuestFiles.Hello, Vcpus = 2, CommandLine = new string('x', PvhLoader.MaxCommandLineBytes - 8),
            Drives = [new DriveSpec(image)],
        };
        LeavesNoFdOrThreadBehind(Fails);

        void Fails() => FluentActions.Invoking(() => Vm.Create(config, GuestRun.Loggers)).Should().Throw<VmConfigException>()
            .WithMessage("*above this kernel's limit*");
    }

    [KvmFact]
    public void A_vm_is_released_level_by_level_threads_first_ram_and_kvm_last()
    {
        string image = GuestFiles.Write("teardown-order.img", new byte[1 << 20]);
        using var vm = Vm.Create(new VmConfig { KernelPath = GuestFiles.Hello, Vcpus = 2, Drives = [new DriveSpec(image)] }, GuestRun.Loggers);

        var order = vm.TeardownOrder();

        order.Should().ContainInOrder("VcpuThread", "VcpuThread", "guard: vCPU threads", "Vcpu", "Vcpu", "VirtioBlock",
            "guard: virtio device workers", "MainLoop", "GuestMemory", "VirtualMachine", "KvmSystem");
        order.Take(3).Should().Equal("VcpuThread", "VcpuThread", "guard: vCPU threads");
        order.TakeLast(3).Should().Equal("GuestMemory", "VirtualMachine", "KvmSystem");
        // The drive's device goes before the ioeventfd and irqfd it signals through.
        order.ToList().IndexOf("VirtioBlock").Should().BeLessThan(order.ToList().IndexOf("IrqFdInterruptLine"));
    }

    [KvmFact]
    public void Creating_and_disposing_vms_releases_every_fd_and_thread()
    {
        LeavesNoFdOrThreadBehind(static () =>
        {
            var (run, _) = GuestRun.Boot(GuestFiles.Hello);
            using (run) run.Start().WaitForExit().GuestStatus.Should().Be(0);
        });
    }

    /// <summary>Runs <paramref name="once"/> once to warm up (runtime threads, lazily opened files), then ten times, and
    /// checks that the process holds no more fds or threads than after the first (a small slack for the runtime).</summary>
    private static void LeavesNoFdOrThreadBehind(Action once)
    {
        once();
        int fds = Directory.GetFiles("/proc/self/fd").Length;
        int threads = System.Diagnostics.Process.GetCurrentProcess().Threads.Count;
        for (int i = 0; i < 10; i++) once();
        Directory.GetFiles("/proc/self/fd").Length.Should().BeLessThanOrEqualTo(fds + 2);
        System.Diagnostics.Process.GetCurrentProcess().Threads.Count.Should().BeLessThanOrEqualTo(threads + 4);
    }
}
