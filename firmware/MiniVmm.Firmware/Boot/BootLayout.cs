namespace MiniVmm.Firmware.Boot;

/// <summary>
/// Where the boot stub's data structures live. All of them are inside the guest's own ELF image (the guest must not
/// write anywhere else), are pre-built at image-generation time (so the emulated CPL0 path stays a few dozen
/// instructions) and are shared by every vCPU, except the per-vCPU TSS and stack.
/// </summary>
public sealed record BootLayout
{
    /// <summary>GDT: null, kernel code64 (0x08), kernel data (0x10), user data (0x18), user code64 (0x20), then one
    /// 16-byte TSS descriptor per vCPU from <see cref="FirstTssSelector"/>.</summary>
    public required ulong Gdt { get; init; }
    /// <summary>6-byte pseudo-descriptor (limit, 32-bit base) for the 32-bit <c>lgdt</c>.</summary>
    public required ulong Gdtr { get; init; }
    public required ulong TssBase { get; init; }
    public required ulong Pml4 { get; init; }
    public required ulong StackBase { get; init; }
    public required int StackSize { get; init; }
    public int MaxVcpus { get; init; } = GuestAbi.MaxVcpus;
    /// <summary>Identity map size, in 2 MiB pages under PDs that follow the PDPT.</summary>
    public ulong MappedBytes { get; init; } = GuestAbi.IdentityMappedBytes;
    /// <summary>Ports that CPL3 code may use (inclusive first, count).</summary>
    public IReadOnlyList<(ushort Port, int Count)> UserPorts { get; init; } =
        [(GuestAbi.SerialPort, 8), (GuestAbi.DebugExitPort, 4), (GuestAbi.ControlPort, 4)];

    public const ushort KernelCode = 0x08;
    public const ushort KernelData = 0x10;
    public const ushort UserData = 0x18 | 3;
    public const ushort UserCode = 0x20 | 3;
    public const ushort FirstTssSelector = 0x28;

    /// <summary>The TSS is 0x68 bytes, then the I/O permission bitmap for ports 0..IoBitmapPorts-1, then the 0xFF byte
    /// the CPU may read past the last bitmap byte. Ports above the bitmap are denied.</summary>
    public const int TssHeaderSize = 0x68;
    public const int IoBitmapPorts = 0x600;
    public const int TssLimit = TssHeaderSize + IoBitmapPorts / 8;   // offset of the terminating 0xFF = limit
    public const int TssStride = 0x140;

    public int GdtSize => FirstTssSelector + 16 * MaxVcpus;
    public ulong Pdpt => Pml4 + 0x1000;
    public ulong FirstPd => Pml4 + 0x2000;
    public int PdCount => (int)(MappedBytes >> 30);
    public ulong PageTablesEnd => FirstPd + (ulong)PdCount * 0x1000;
    public ulong TssEnd => TssBase + (ulong)(MaxVcpus * TssStride);
    public ulong StackEnd => StackBase + (ulong)(MaxVcpus * StackSize);
    public ulong TssAddress(int vcpu) => TssBase + (ulong)(vcpu * TssStride);
    public ulong StackTop(int vcpu) => StackBase + (ulong)((vcpu + 1) * StackSize);
}
