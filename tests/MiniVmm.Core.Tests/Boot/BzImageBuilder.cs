using System.Buffers.Binary;
using MiniVmm.Core.Boot;

namespace MiniVmm.Core.Tests.Boot;

/// <summary>Builds a small synthetic bzImage: <see cref="SetupSects"/> setup sectors holding a protocol 2.15 setup
/// header as a 64-bit relocatable kernel states it, then <see cref="Kernel"/> as the protected-mode kernel.
/// Fields are public so a test can break one.</summary>
public sealed class BzImageBuilder
{
    public byte SetupSects { get; set; } = 4;
    public ushort Version { get; set; } = 0x020f;
    public byte LoadFlags { get; set; } = LinuxSetupHeader.LoadedHigh;
    public ushort XLoadFlags { get; set; } = LinuxSetupHeader.XlfKernel64;
    public bool Relocatable { get; set; } = true;
    public uint KernelAlignment { get; set; } = 0x200000;
    public ulong PrefAddress { get; set; } = 0x1000000;
    public uint InitSize { get; set; } = 0x400000;
    public uint CmdlineSize { get; set; } = 2047;
    public uint InitrdAddrMax { get; set; } = 0x7fffffff;
    public byte[] Kernel { get; set; } = ElfBuilder.Code(0x3000);

    public byte[] Build()
    {
        int setupBytes = (SetupSects + 1) * 512;
        byte[] file = new byte[setupBytes + Kernel.Length];
        Span<byte> f = file;
        f[LinuxSetupHeader.SetupSects] = SetupSects;
        BinaryPrimitives.WriteUInt16LittleEndian(f[LinuxSetupHeader.BootFlag..], LinuxSetupHeader.BootFlagValue);
        f[LinuxSetupHeader.Jump] = 0xeb;
        f[LinuxSetupHeader.Jump + 1] = 0x6a; // header ends at 0x26c, as in 2.15 kernels
        BinaryPrimitives.WriteUInt32LittleEndian(f[LinuxSetupHeader.Header..], LinuxSetupHeader.HeaderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(f[LinuxSetupHeader.Version..], Version);
        f[LinuxSetupHeader.LoadFlags] = LoadFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(f[LinuxSetupHeader.Code32Start..], 0x100000);
        BinaryPrimitives.WriteUInt32LittleEndian(f[LinuxSetupHeader.InitrdAddrMax..], InitrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(f[LinuxSetupHeader.KernelAlignment..], KernelAlignment);
        f[LinuxSetupHeader.RelocatableKernel] = (byte)(Relocatable ? 1 : 0);
        BinaryPrimitives.WriteUInt16LittleEndian(f[LinuxSetupHeader.XLoadFlags..], XLoadFlags);
        BinaryPrimitives.WriteUInt32LittleEndian(f[LinuxSetupHeader.CmdlineSize..], CmdlineSize);
        BinaryPrimitives.WriteUInt64LittleEndian(f[LinuxSetupHeader.PrefAddress..], PrefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(f[LinuxSetupHeader.InitSize..], InitSize);
        Kernel.CopyTo(f[setupBytes..]);
        return file;
    }
}
