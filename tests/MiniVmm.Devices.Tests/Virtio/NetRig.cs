using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio;
using MiniVmm.Devices.Virtio.Mmio;
using MiniVmm.Devices.Virtio.Net;
using P = MiniVmm.Devices.Virtio.Net.VirtioNetProtocol;
using R = MiniVmm.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace MiniVmm.Devices.Tests.Virtio;

/// <summary>A virtio-net device on a <see cref="FakeNetBackend"/> behind virtio-mmio with the mock driver: receive queue 0
/// at the first queue area, transmit queue 1 at a second one 2 MiB up; device and transport log to <see cref="Log"/>.</summary>
internal sealed class NetRig : IDisposable
{
    public const ulong TxArea = 2 << 20;
    public static readonly MacAddress Mac = MacAddress.Parse("52:54:00:ab:cd:ef");

    public NetRig(bool startPaused = false, ushort rxSize = 16, ushort txSize = 16)
    {
        Net = new VirtioNet(Backend, Mac, "vnet0", logger: Log, startPaused: startPaused);
        Transport = new VirtioMmioTransport(Net, Memory, new RecordingInterruptLine(), Log);
        Driver = new MockMmioDriver(Transport);
        Rx = new MockQueue(Memory, rxSize);
        Tx = new MockQueue(Memory, txSize, TxArea);
    }

    public GuestMemory Memory { get; } = GuestMemory.CreateAnonymous(4 << 20);
    public FakeNetBackend Backend { get; } = new();
    public RecordingLogger Log { get; } = new();
    public VirtioNet Net { get; }
    public VirtioMmioTransport Transport { get; }
    public MockMmioDriver Driver { get; }
    public MockQueue Rx { get; }
    public MockQueue Tx { get; }

    public bool NeedsReset => (Driver.Read(R.Status) & VirtioStatus.DeviceNeedsReset) != 0;

    public void BringUp(ulong? features = null)
    {
        Driver.Negotiate(features ?? Driver.DeviceFeatures()).Should().BeTrue();
        Driver.SetupQueue(0, Rx.Layout);
        Driver.SetupQueue(1, Tx.Layout);
        Driver.DriverOk();
    }

    /// <summary>A frame of <paramref name="length"/> bytes after a zero header.</summary>
    public static byte[] FrameWithHeader(int length, byte seed)
    {
        var b = new byte[P.HeaderSize + length];
        for (int i = 0; i < length; i++) b[P.HeaderSize + i] = (byte)(seed + i);
        return b;
    }

    /// <summary>Publishes one transmit chain holding <paramref name="frameWithHeader"/> and kicks the queue.</summary>
    public void Transmit(byte[] frameWithHeader)
    {
        Tx.AddChain((Tx.AllocateWith(frameWithHeader), (uint)frameWithHeader.Length, false));
        Driver.Notify(1);
    }

    public static bool Eventually(Func<bool> condition) => SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(20));

    public void Dispose()
    {
        Net.Dispose();
        Memory.Dispose();
    }
}
