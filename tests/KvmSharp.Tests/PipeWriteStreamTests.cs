using System.IO.Pipes;

namespace KvmSharp.Tests;

/// <summary>The non-blocking pipe writer never holds its caller past the stall timeout or an interrupt.</summary>
public sealed class PipeWriteStreamTests
{
    private static (AnonymousPipeServerStream Server, AnonymousPipeClientStream Reader) NewPipe()
    {
        var server = new AnonymousPipeServerStream(PipeDirection.Out);
        var reader = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
        return (server, reader);
    }

    [Fact]
    public void Writes_reach_the_reader()
    {
        var (server, reader) = NewPipe();
        using (server)
        using (reader)
        using (var pipe = PipeWriteStream.DuplicateOf(server.SafePipeHandle))
        {
            pipe.Write([1, 2, 3]);
            var buffer = new byte[3];
            reader.ReadExactly(buffer);
            buffer.Should().Equal(1, 2, 3);
        }
    }

    [Fact]
    public void A_reader_that_takes_nothing_fails_the_write_after_the_stall_timeout()
    {
        var (server, reader) = NewPipe();
        using (server)
        using (reader)
        using (var pipe = PipeWriteStream.DuplicateOf(server.SafePipeHandle, pipeBytes: 64 << 10))
        {
            pipe.StallTimeout = TimeSpan.FromMilliseconds(100);
            var act = () => pipe.Write(new byte[4 << 20]);
            act.Should().Throw<TimeoutException>().WithMessage("*took no data*");
        }
    }

    [Fact]
    public void Interrupt_from_another_thread_ends_a_write_waiting_on_a_full_pipe()
    {
        var (server, reader) = NewPipe();
        using (server)
        using (reader)
        using (var pipe = PipeWriteStream.DuplicateOf(server.SafePipeHandle, pipeBytes: 64 << 10))
        {
            var writer = Task.Run(() => pipe.Write(new byte[4 << 20]));
            Thread.Sleep(100);
            writer.IsCompleted.Should().BeFalse("the pipe is full and nobody reads");
            pipe.Interrupt();
            var act = () => writer.Wait(TimeSpan.FromSeconds(30));
            act.Should().Throw<OperationCanceledException>();
            // Every later write fails too, and interrupting after disposal is harmless.
            ((Action)(() => pipe.Write([1]))).Should().Throw<OperationCanceledException>();
        }
    }

    [Fact]
    public void A_closed_reader_is_reported_as_an_io_error()
    {
        var (server, reader) = NewPipe();
        using (server)
        using (var pipe = PipeWriteStream.DuplicateOf(server.SafePipeHandle))
        {
            server.DisposeLocalCopyOfClientHandle();
            reader.Dispose();
            var act = () => pipe.Write(new byte[1024]);
            act.Should().Throw<IOException>().WithMessage("*closed the pipe*");
            pipe.Dispose();
            pipe.Interrupt();
        }
    }
}
