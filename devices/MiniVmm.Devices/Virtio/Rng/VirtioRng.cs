using MiniVmm.Core.Memory;
using MiniVmm.Devices.Virtio.Queue;

namespace MiniVmm.Devices.Virtio.Rng;

/// <summary>
/// virtio-rng (entropy device, virtio 1.2 §5.4): one request queue; every device-writable buffer the driver posts is
/// filled with host entropy. No config space, no device features.
/// </summary>
public sealed class VirtioRng(IEntropySource entropy, IVirtioDoorbell? doorbell = null, string name = "virtio-rng", bool startPaused = false)
    : VirtioDevice(doorbell, startPaused)
{
    /// <summary>At most this much per request, so one huge buffer cannot hold the worker for long.</summary>
    public const int MaxBytesPerRequest = 64 * 1024;

    private readonly byte[] _buffer = new byte[MaxBytesPerRequest];

    public override uint DeviceId => VirtioDeviceId.Entropy;
    public override string Name => name;
    protected override ulong DeviceFeatures => 0;
    public override int QueueCount => 1;

    public override void ReadConfig(uint offset, Span<byte> data) => data.Clear();

    protected override uint Handle(int queueIndex, DescriptorChain chain, GuestMemory memory)
    {
        int length = (int)Math.Min(chain.WritableBytes, MaxBytesPerRequest);
        var span = _buffer.AsSpan(0, length);
        entropy.Fill(span);
        return (uint)ChainIo.Write(memory, chain, 0, span);
    }
}
