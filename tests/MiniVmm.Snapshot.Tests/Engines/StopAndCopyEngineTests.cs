using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>The reference engine against the same fake VM: the image is RAM at the pause, and the VM runs on.</summary>
public sealed class StopAndCopyEngineTests
{
    [Fact]
    public void The_image_is_ram_at_the_pause_and_the_vcpu_runs_again()
    {
        using var h = new EngineHarness(1024, 512);
        h.Vm.WaitForPrefill();
        var sink = h.CreateSink("stop-copy");
        var result = EngineHarness.Finish(h.Start(new StopAndCopyEngine(), sink, new SnapshotOptions()));

        result.Succeeded.Should().BeTrue(result.Error);
        Enumerable.Range(0, 1024).Where(p => sink.CountOf(p) != 1).Should().BeEmpty();
        h.Vm.Pauses.Should().Be(1);
        h.Vm.Resumes.Should().Be(1);
        h.AssertImageIsRamAtFreeze(result);
        h.Vm.KeepsWriting(4096).Should().BeTrue();
    }

    [Fact]
    public void A_failing_destination_resumes_the_vm_and_removes_the_file()
    {
        using var h = new EngineHarness(1024, 512);
        h.Vm.WaitForPrefill();
        var sink = h.CreateSink("stop-copy", failAfterPages: 100);
        var result = EngineHarness.Finish(h.Start(new StopAndCopyEngine(), sink, new SnapshotOptions()));

        result.Succeeded.Should().BeFalse();
        result.Error.Should().StartWith("the destination is full");
        sink.Aborted.Should().BeTrue();
        File.Exists(h.Path).Should().BeFalse();
        h.Vm.Resumes.Should().Be(1);
        h.Vm.KeepsWriting(4096).Should().BeTrue();
    }
}
