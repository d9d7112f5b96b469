using MiniVmm.Machine.Devices;

namespace MiniVmm.Machine.Tests.Devices;

public sealed class TapErrorsTests
{
    [Theory]
    [InlineData(11, TapFailure.Transient)]   // EAGAIN
    [InlineData(4, TapFailure.Transient)]    // EINTR
    [InlineData(105, TapFailure.Transient)]  // ENOBUFS: the host's queue is full for now
    [InlineData(12, TapFailure.Transient)]   // ENOMEM
    [InlineData(22, TapFailure.FrameRefused)] // EINVAL: a vnet header the kernel rejects
    [InlineData(90, TapFailure.FrameRefused)] // EMSGSIZE
    [InlineData(77, TapFailure.Dead)]        // EBADFD: the interface was deleted under the fd
    [InlineData(9, TapFailure.Dead)]         // EBADF
    [InlineData(19, TapFailure.Dead)]        // ENODEV
    public void Only_errors_no_frame_can_get_past_again_are_a_dead_tap(int errno, TapFailure expected)
    {
        TapErrors.Classify((KvmSharp.Errno)errno).Should().Be(expected);
    }
}
