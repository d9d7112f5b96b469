using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Tests.Shared;
using MiniVmm.Core.Memory;

namespace MiniVmm.Integration.Tests;

/// <summary>Boots the firmware guests under KVM and checks what they observed.</summary>
public sealed class BootTests
{
    [KvmFact]
    public void Hello_prints_its_line_and_exits_with_status_zero()
    {
        var (run, serial) = GuestRun.Boot(GuestFiles.Hello);
        using (run)
        {
            var status = run.Start().WaitForExit();
            status.Reason.Should().Be(VmStopReason.GuestExit);
            status.GuestStatus.Should().Be(0);
            status.ProcessExitCode.Should().Be(0);
            serial().Should().Contain("Hello from MiniVmm guest\n");
        }
    }

    [KvmTheory]
    [InlineData(1, "seq")]
    [InlineData(1, "rand")]
    [InlineData(2, "seq")]
    public void Writer_completes_its_sweeps_without_failures(int cpus, string pattern)
    {
        var (run, serial) = GuestRun.Boot(GuestFiles.Writer, $"mb=16 sweeps=5 pattern={pattern} cpus={cpus}", cpus);
        using (run)
        {
            var status = run.Start().WaitForExit();
            status.Should().Be(new VmExitStatus(VmStopReason.GuestExit, 0), serial());
            run.Status(GuestAbi.Status.Magic).Should().Be(GuestAbi.StatusMagic);
            run.Status(GuestAbi.Status.State).Should().Be(GuestAbi.StateDone);
            run.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
            run.Status(GuestAbi.Status.CpusRunning).Should().Be((ulong)cpus);
            run.Status(GuestAbi.Status.TotalPagesWritten).Should().Be(5UL * 16 * 256);
            for (int v = 0; v < cpus; v++) run.VcpuStatus(v, GuestAbi.VcpuStatus.Generation).Should().Be(5);
            serial().Should().Contain("writer: done");
        }
    }

    [KvmFact]
    public void Writer_detects_a_page_corrupted_from_the_host()
    {
        var (run, serial) = GuestRun.Boot(GuestFiles.Writer, "mb=4 sweeps=12 rate=20000");
        using (run)
        {
            run.Start();
            run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 1, "the first sweep");
            // Flip the generation word of a page the writer will check again on its next sweep.
            ulong victim = GuestAbi.BufferGpa + 100 * 4096;
            run.Vm.Memory.Write<ulong>(new GuestAddress(victim), 0xdead_beef_0bad_f00d);
            run.WaitUntil(() => run.Status(GuestAbi.Status.TotalFailures) > 0, "the writer to notice the corruption");
            run.Status(GuestAbi.Status.FirstFailureGpa).Should().Be(victim);
            run.Status(GuestAbi.Status.FirstFailureFound).Should().Be(0xdead_beef_0bad_f00d);
            var status = run.WaitForExit();
            status.Should().Be(new VmExitStatus(VmStopReason.GuestExit, GuestAbi.ExitFailures));
            serial().Should().Contain("writer: FAIL");
        }
    }
}
