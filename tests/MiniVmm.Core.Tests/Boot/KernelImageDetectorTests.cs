using FluentAssertions;
using MiniVmm.Core.Boot;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Core.Tests.Boot;

public sealed class KernelImageDetectorTests
{
    [Fact]
    public void Elf_with_pvh_note_is_pvh() =>
        KernelImageDetector.Detect(ElfBuilder.Minimal().Build()).Should().Be(KernelImageKind.Pvh);

    [Fact]
    public void Elf_without_pvh_note_is_vmlinux() =>
        KernelImageDetector.Detect(new ElfBuilder().Load(0x1000000, ElfBuilder.Code(64)).Build())
            .Should().Be(KernelImageKind.Vmlinux);

    [Fact]
    public void Malformed_elf_is_reported_by_the_pvh_parser() =>
        KernelImageDetector.Detect(ElfBuilder.Minimal().Build().AsSpan(0, 30)).Should().Be(KernelImageKind.Pvh);

    [Fact]
    public void Debian_kernel_is_a_bzImage() =>
        KernelImageDetector.Detect(DebianKernel.Bytes()).Should().Be(KernelImageKind.BzImage);

    [Fact]
    public void Synthetic_bzImage_is_a_bzImage() =>
        KernelImageDetector.Detect(new BzImageBuilder().Build()).Should().Be(KernelImageKind.BzImage);

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(4096)]
    public void Anything_else_is_refused(int length)
    {
        Action detect = () => KernelImageDetector.Detect(new byte[length]);
        detect.Should().Throw<BootImageException>().WithMessage("not a kernel image MiniVmm can boot*");
    }
}
