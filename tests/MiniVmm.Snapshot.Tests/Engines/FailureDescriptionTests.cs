using KvmSharp;
using MiniVmm.Snapshot.Engines;

namespace MiniVmm.Snapshot.Tests.Engines;

/// <summary>A full destination is recognised by its errno, not by the words of the message.</summary>
public sealed class FailureDescriptionTests
{
    [Fact]
    public void A_write_to_a_full_device_is_reported_as_a_full_destination()
    {
        // /dev/full fails every write with ENOSPC: the exception .NET's own file stream throws for a full disk.
        using var stream = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        var e = stream.Invoking(s => s.Write(new byte[4096])).Should().Throw<IOException>().Which;
        WriteTrackingRun.Describe(e).Should().StartWith("the destination is full: ");
    }

    [Fact]
    public void A_linux_call_that_failed_with_enospc_or_edquot_is_a_full_destination()
    {
        WriteTrackingRun.Describe(new LinuxException("write", Errno.ENOSPC)).Should().StartWith("the destination is full: ");
        WriteTrackingRun.Describe(new LinuxException("write", Errno.EDQUOT)).Should().StartWith("the destination is full: ");
    }

    [Fact]
    public void Other_failures_keep_their_message_even_when_it_mentions_space()
    {
        WriteTrackingRun.Describe(new IOException("address space exhausted")).Should().Be("address space exhausted");
        WriteTrackingRun.Describe(new LinuxException("write", Errno.EIO)).Should().NotStartWith("the destination is full");
    }
}
