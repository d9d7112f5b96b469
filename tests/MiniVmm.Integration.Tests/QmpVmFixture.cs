using MiniVmm.Firmware;
using MiniVmm.Machine.Monitor;
using MiniVmm.Machine.Snapshots;

namespace MiniVmm.Integration.Tests;

/// <summary>A running writer guest with a QMP monitor on a fresh socket, torn down in order (monitor, then VM).</summary>
public sealed class QmpVmFixture : IDisposable
{
    public QmpVmFixture(string cmdline = "mb=32 sweeps=0 report_ms=0", int cpus = 1)
    {
        (Run, Serial) = GuestRun.Boot(GuestFiles.Writer, cmdline, cpus);
        Controller = new SnapshotController(Run.Vm, GuestRun.Loggers);
        // Short, so the path fits sockaddr_un even under a long temporary directory.
        SocketPath = Path.Combine(Path.GetTempPath(), $"mvq-{Guid.NewGuid():N}"[..20] + ".sock");
        Server = QmpServer.Start(Run.Vm, Controller, SocketPath, GuestRun.Loggers);
        Run.Start();
        Run.WaitUntil(() => Generation >= 1, "the writer's first sweep");
    }

    public GuestRun Run { get; }
    public Func<string> Serial { get; }
    public SnapshotController Controller { get; }
    public QmpServer Server { get; }
    public string SocketPath { get; }

    public ulong Generation => Run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation);

    /// <summary>Proves the guest still runs: its generation moves on.</summary>
    public void ShouldBeRunning()
    {
        ulong before = Generation;
        Run.WaitUntil(() => Generation > before, "the writer to keep sweeping", TimeSpan.FromSeconds(20));
    }

    public QmpTestClient Connect() => QmpTestClient.Negotiated(SocketPath);

    public void Dispose()
    {
        Server.Dispose();
        Run.Dispose();
    }
}
