using MiniVmm.Tests.Shared;

namespace KvmSharp.Tests;

/// <summary>Real calls into /dev/kvm and userfaultfd.</summary>
public sealed class KvmSystemTests
{
    [KvmFact]
    public void Opens_kvm_and_reports_the_capabilities_MiniVmm_needs()
    {
        using var kvm = KvmSystem.Open();
        kvm.CheckExtension(KvmCapability.IrqChip).Should().BePositive();
        kvm.CheckExtension(KvmCapability.ImmediateExit).Should().BePositive();
        kvm.VcpuMmapSize.Should().BeGreaterThanOrEqualTo(4096);
        kvm.GetSupportedCpuid().Should().Contain(e => e.function == 0);
        kvm.GetMsrIndexList().Should().NotBeEmpty();
    }

    [KvmFact]
    public void Missing_capability_is_named_in_the_error()
    {
        using var kvm = KvmSystem.Open();
        var act = () => kvm.RequireCapabilities(KvmCapability.IrqChip, (KvmCapability)100000);
        act.Should().Throw<KvmException>().WithMessage("*KVM_CAP_100000*").Which.Message.Should().NotContain("IRQCHIP");
        KvmSystem.CapabilityName(KvmCapability.ImmediateExit).Should().Be("KVM_CAP_IMMEDIATE_EXIT");
        KvmSystem.CapabilityName(KvmCapability.Pit2).Should().Be("KVM_CAP_PIT2");
    }

    [Fact]
    public void Missing_device_gives_a_clear_error_with_errno()
    {
        var act = () => KvmSystem.Open("/dev/does-not-exist-kvm");
        act.Should().Throw<KvmException>().Where(e => e.Errno == Errno.ENOENT && e.Message.Contains("KVM is not available"));
    }

    [KvmFact]
    public void Vcpu_registers_round_trip()
    {
        using var kvm = KvmSystem.Open();
        using var vm = kvm.CreateVm();
        vm.CreateIrqChip();
        using var vcpu = vm.CreateVcpu(0);
        var regs = vcpu.GetRegs();
        regs.rip = 0x1234;
        regs.rax = 0xdeadbeef;
        vcpu.SetRegs(regs);
        vcpu.GetRegs().rip.Should().Be(0x1234);
        vcpu.GetRegs().rax.Should().Be(0xdeadbeef);
        vcpu.GetTscKhz().Should().BePositive();
    }

    [KvmFact]
    public void Userfaultfd_offers_write_protection_of_unpopulated_memory()
    {
        using var uffd = UserfaultFd.Create(UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated | UffdFeatures.ThreadId);
        uffd.Features.Should().HaveFlag(UffdFeatures.WpUnpopulated);
        using var mem = MemoryMapping.Anonymous(1 << 20);
        uffd.Register(mem, UffdRegisterMode.WriteProtect).Should().HaveFlag(UffdRangeOperations.WriteProtect);
        uffd.WriteProtect(mem, 0, mem.Length, protect: true);
        uffd.WriteProtect(mem, 0, mem.Length, protect: false);
        var outside = () => uffd.WriteProtect(mem, 4096, mem.Length, protect: true);
        outside.Should().Throw<ArgumentOutOfRangeException>("a range past the mapping's end never reaches the kernel");
        uffd.Unregister(mem);
    }

    [Fact]
    public void Mapping_spans_are_bounds_checked()
    {
        using var mem = MemoryMapping.Anonymous(8192);
        mem.GetSpan(4096, 4096).Length.Should().Be(4096);
        Action act = () => mem.GetSpan(4097, 4096);
        act.Should().Throw<ArgumentOutOfRangeException>();
        Action overflow = () => mem.GetSpan(ulong.MaxValue - 1, 16);
        overflow.Should().Throw<ArgumentOutOfRangeException>();
    }

    [KvmFact]
    public void Ioeventfd_registers_once_per_address_and_deassigns_on_dispose()
    {
        using var kvm = KvmSystem.Open();
        kvm.CheckExtension(KvmCapability.IoEventFd).Should().BePositive();
        using var vm = kvm.CreateVm();
        var first = vm.CreateIoEventFd(0xd000_0050, 4);
        first.Address.Should().Be(0xd000_0050);
        // KVM refuses a second identical registration: proof the first one is in place.
        var duplicate = () => vm.CreateIoEventFd(0xd000_0050, 4);
        duplicate.Should().Throw<KvmException>().Where(e => e.Errno == Errno.EEXIST);
        // A user-space wake reaches a waiter (the path a device worker uses to stop).
        first.Wake();
        first.Wait().Should().Be(1);
        first.Dispose();
        using var again = vm.CreateIoEventFd(0xd000_0050, 4);
        var badLength = () => vm.CreateIoEventFd(0xd000_0050, 3);
        badLength.Should().Throw<ArgumentOutOfRangeException>();
    }

    [KvmFact]
    public void Irqfd_attaches_to_an_ioapic_gsi_and_detaches_on_dispose()
    {
        using var kvm = KvmSystem.Open();
        kvm.CheckExtension(KvmCapability.IrqFd).Should().BePositive();
        using var vm = kvm.CreateVm();
        vm.CreateIrqChip();
        var irq = vm.CreateIrqFd(5);
        irq.Gsi.Should().Be(5);
        irq.Trigger();
        irq.Dispose();
        irq.Dispose(); // idempotent
        using var other = vm.CreateIrqFd(5);
        other.Trigger();
    }
}
