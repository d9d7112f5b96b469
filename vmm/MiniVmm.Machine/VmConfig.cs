namespace MiniVmm.Machine;

/// <summary>Where the guest's serial output goes.</summary>
public abstract record SerialTarget
{
    public sealed record Stdio : SerialTarget;
    public sealed record File(string Path) : SerialTarget;
    /// <summary>In-process sink (tests, embedding).</summary>
    public sealed record Callback(Action<ReadOnlyMemory<byte>> Write) : SerialTarget;
    public sealed record None : SerialTarget;
}

/// <summary>Everything needed to build a VM. Validated by <see cref="Validate"/> before any kernel object is created.</summary>
public sealed record VmConfig
{
    public const ulong MinMemory = 2UL << 20;
    /// <summary>One RAM region below the 32-bit MMIO hole; more needs a split memory map (not yet).</summary>
    public const ulong MaxMemory = 3UL << 30;
    public const int MaxVcpus = 16;

    public required string KernelPath { get; init; }
    /// <summary>An initial RAM disk for a Linux kernel (<c>--initrd</c>); null for none.</summary>
    public string? InitrdPath { get; init; }
    public string CommandLine { get; init; } = "";

    /// <summary>
    /// The command line as the user gave it, where <see cref="CommandLine"/> already holds what MiniVmm appended
    /// (restore: the recorded effective line); null when they are the same. Recorded so a config can be printed back.
    /// </summary>
    public string? UserCommandLine { get; init; }
    public ulong MemoryBytes { get; init; } = 512UL << 20;
    public int Vcpus { get; init; } = 1;
    /// <summary>
    /// Back guest RAM with transparent huge pages (MADV_HUGEPAGE). On by default: write-protecting RAM at a snapshot's
    /// freeze then works per 2 MiB entry instead of per 4 KiB page (measured: docs/DESIGN-NOTES.md, "Huge pages").
    /// </summary>
    public bool HugePages { get; init; } = true;
    public SerialTarget Serial { get; init; } = new SerialTarget.Stdio();
    /// <summary>Append ` tsc_khz=N` (the rate KVM reports) unless the command line has one: paced guests need it.</summary>
    public bool AppendTscKhz { get; init; } = true;
    /// <summary>virtio-blk drives (<c>--drive</c>), in slot order.</summary>
    public IReadOnlyList<MiniVmm.Devices.Virtio.Block.DriveSpec> Drives { get; init; } = [];
    /// <summary>A virtio-rng device (<c>--rng</c>).</summary>
    public bool Rng { get; init; }
    /// <summary>Append <c>virtio_mmio.device=4K@ADDR:IRQ</c> per virtio device (off on restore: the recorded command
    /// line has them already).</summary>
    public bool AnnounceVirtioDevices { get; init; } = true;

    /// <summary>Throws <see cref="VmConfigException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        if (MemoryBytes < MinMemory) throw new VmConfigException($"memory {MemoryBytes} bytes is too small: at least {MinMemory >> 20} MiB is needed");
        if (MemoryBytes > MaxMemory) throw new VmConfigException($"memory {MemoryBytes >> 20} MiB is above the supported {MaxMemory >> 20} MiB");
        if (MemoryBytes % 4096 != 0) throw new VmConfigException($"memory {MemoryBytes} bytes is not a multiple of 4 KiB");
        if (Vcpus < 1 || Vcpus > MaxVcpus) throw new VmConfigException($"vCPU count {Vcpus} is outside 1..{MaxVcpus}");
        if (string.IsNullOrEmpty(KernelPath)) throw new VmConfigException("no kernel given");
        if (InitrdPath is { Length: 0 }) throw new VmConfigException("--initrd: empty path");
    }
}

/// <summary>A configuration or input problem the user can fix (bad size, missing kernel, malformed image).</summary>
public sealed class VmConfigException(string message, Exception? inner = null) : Exception(message, inner);
