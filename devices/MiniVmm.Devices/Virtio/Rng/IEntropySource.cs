namespace MiniVmm.Devices.Virtio.Rng;

/// <summary>Where virtio-rng's bytes come from (the host's getrandom in the VM; a fixed source in tests).</summary>
public interface IEntropySource
{
    void Fill(Span<byte> destination);
}
