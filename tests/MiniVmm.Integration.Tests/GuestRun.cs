using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Core.Memory;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Runs a VM on a background thread for a test: captures the serial console, reads the writer's status page, and
/// stops the VM after a generous timeout so a hung guest fails the test instead of hanging the run.
/// </summary>
public sealed class GuestRun : IDisposable
{
    private readonly StringBuilder _serial = new();
    private readonly Thread _thread;
    private VmExitStatus? _status;

    public GuestRun(Vm vm)
    {
        Vm = vm;
        _thread = new Thread(() => _status = Vm.Run()) { Name = "test-vm", IsBackground = true };
    }

    public Vm Vm { get; }

    public static ILoggerFactory Loggers { get; } = NullLoggerFactory.Instance;

    public static (GuestRun Run, Func<string> Serial) Boot(string kernel, string cmdline = "", int cpus = 1, ulong mem = 256UL << 20,
        IReadOnlyList<MiniVmm.Devices.Virtio.Block.DriveSpec>? drives = null)
    {
        var serial = new StringBuilder();
        var config = new VmConfig
        {
            KernelPath = kernel,
            CommandLine = cmdline,
            Vcpus = cpus,
            MemoryBytes = mem,
            Serial = new SerialTarget.Callback(bytes => { lock (serial) serial.Append(Encoding.ASCII.GetString(bytes.Span)); }),
            Drives = drives ?? [],
        };
        var run = new GuestRun(Vm.Create(config, Loggers));
        return (run, () => { lock (serial) return serial.ToString(); });
    }

    public GuestRun Start()
    {
        _thread.Start();
        return this;
    }

    /// <summary>Waits for the VM to stop by itself; on timeout stops it and fails.</summary>
    public VmExitStatus WaitForExit(TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        if (!_thread.Join(limit))
        {
            Vm.RequestStop(new VmExitStatus(VmStopReason.HostRequest, Detail: "test timeout"));
            _thread.Join(TimeSpan.FromSeconds(10));
            throw new TimeoutException($"guest did not exit within {limit}");
        }
        return _status!;
    }

    public VmExitStatus Stop()
    {
        Vm.RequestStop(new VmExitStatus(VmStopReason.HostRequest, Detail: "stopped by test"));
        _thread.Join(TimeSpan.FromSeconds(10));
        return _status!;
    }

    public ulong Status(int field) => Vm.Memory.Read<ulong>(new GuestAddress(GuestAbi.StatusPageGpa + (ulong)field));

    public ulong VcpuStatus(int vcpu, int field) => Vm.Memory.Read<ulong>(new GuestAddress(GuestAbi.VcpuBlockGpa(vcpu) + (ulong)field));

    /// <summary>Polls until <paramref name="condition"/> holds (e.g. the writer reached a generation).</summary>
    public void WaitUntil(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (!_thread.IsAlive) throw new InvalidOperationException($"VM stopped ({_status}) before {what}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException("timed out waiting for " + what);
            Thread.Sleep(2);
        }
    }

    public void Dispose()
    {
        if (_thread.IsAlive) Stop();
        Vm.Dispose();
    }
}
