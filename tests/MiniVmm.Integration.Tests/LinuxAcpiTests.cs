using System.Buffers.Binary;
using System.Diagnostics;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// Debian's stock kernel (ACPI-only: built without CONFIG_X86_MPPARSE) reads MiniVmm's ACPI tables and sees every
/// vCPU and the IOAPIC. The kernel is the vmlinux inside Debian's bzImage, decompressed here (its decompressor alone
/// takes minutes on a host that emulates guest kernel code), booted through the PVH entry its ELF note names and,
/// with that note removed, through the Linux 64-bit boot protocol. Both reach their ACPI lines within seconds; the test
/// stops the VM there (the kernel later needs an instruction this host's emulator lacks, see docs/DESIGN-NOTES.md).
/// </summary>
public sealed class LinuxAcpiTests
{
    /// <summary>A bound for a kernel that never gets there, not a timing claim: the lines came after ~10-40 s on a
    /// shared 2-core host.</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    [KvmTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void Stock_debian_kernel_sees_every_vcpu_the_ioapic_and_the_tables(bool pvh)
    {
        string kernel = DebianVmlinux(pvh);
        using var vm = ConsoleCapture.Start("dotnet",
            [MinivmmProcess.DllPath, "run", "--kernel", kernel, "--cpus", "3", "--mem", "512M", "--rng",
             "--cmdline", "nokaslr console=ttyS0 earlyprintk=ttyS0"]);

        bool reached = vm.WaitFor(l => l.Contains("smpboot: Allowing"), Limit);

        string transcript = vm.Transcript();
        reached.Should().BeTrue("the kernel gets to its SMP configuration\n" + transcript);
        var lines = vm.Lines;
        lines.Should().Contain(l => l.Contains("ACPI: RSDP 0x00000000000E0000 000024 (v02 MINVMM)"), transcript);
        foreach (string table in new[] { "XSDT", "FACP", "DSDT", "APIC" })
            lines.Should().Contain(l => l.Contains($"ACPI: {table} 0x00000000000E") && l.Contains("MINVMM"), $"{table} listed\n{transcript}");
        lines.Should().NotContain(l => l.Contains("ACPI BIOS Error") || l.Contains("ACPI Error") || l.Contains("Incorrect checksum"), transcript);
        lines.Should().Contain(l => l.Contains("IOAPIC[0]: apic_id 3, version 17, address 0xfec00000, GSI 0-23"), transcript);
        lines.Should().Contain(l => l.Contains("ACPI: Using ACPI (MADT) for SMP configuration information"), transcript);
        lines.Should().Contain(l => l.Contains("smpboot: Allowing 3 CPUs, 0 hotplug CPUs"), "one MADT entry per vCPU\n" + transcript);
    }

    private static readonly Lazy<byte[]> Vmlinux = new(Decompress);

    /// <summary>The vmlinux ELF, with its PVH entry note or (for the 64-bit protocol) with the note's type changed.</summary>
    private static string DebianVmlinux(bool pvh)
    {
        byte[] elf = (byte[])Vmlinux.Value.Clone();
        if (!pvh)
            DisablePvhNote(elf).Should().BeTrue("Debian's vmlinux has the Xen PVH entry note (CONFIG_PVH)");
        return GuestFiles.Write(pvh ? "debian-vmlinux-pvh" : "debian-vmlinux-64bit", elf);
    }

    /// <summary>The bzImage's payload (<c>payload_offset</c>/<c>payload_length</c> past the setup code) is Debian's
    /// LZ4-compressed vmlinux; the lz4 tool unpacks it (its trailing 4-byte size field makes lz4 exit 1 after a
    /// complete output, so the ELF magic and a plausible size are checked instead).</summary>
    private static byte[] Decompress()
    {
        byte[] bz = File.ReadAllBytes(DebianKernel.Path);
        int setup = (bz[0x1f1] + 1) * 512;
        int offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(bz.AsSpan(0x248));
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bz.AsSpan(0x24c));
        byte[] payload = bz.AsSpan(setup + offset, length).ToArray();
        BinaryPrimitives.ReadUInt32LittleEndian(payload).Should().Be(0x184c2102u, "Debian's cloud kernel is LZ4 (legacy frame) compressed");
        string input = GuestFiles.TempPath("vmlinux.lz4"), output = GuestFiles.TempPath("vmlinux");
        File.WriteAllBytes(input, payload);
        var psi = new ProcessStartInfo("lz4", ["-d", "-f", "-q", input, output]) { RedirectStandardError = true };
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("the lz4 tool is needed to unpack Debian's kernel: apt-get install lz4 (.ci/run does)", e);
        }
        using (p)
        {
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            byte[] elf = File.Exists(output) ? File.ReadAllBytes(output) : [];
            bool isElf = elf.Length > 16 << 20 && elf.AsSpan(0, 4).SequenceEqual((byte[])[0x7f, (byte)'E', (byte)'L', (byte)'F']);
            isElf.Should().BeTrue($"lz4 unpacked a vmlinux ELF (exit {p.ExitCode}: {err})");
            return elf;
        }
    }

    /// <summary>Changes the type of the ELF note "Xen" / XEN_ELFNOTE_PHYS32_ENTRY (18), so MiniVmm sees a plain vmlinux.</summary>
    private static bool DisablePvhNote(byte[] elf)
    {
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x20));
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x36));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x38));
        bool found = false;
        for (int i = 0; i < phnum; i++)
        {
            Span<byte> ph = elf.AsSpan((int)phoff + i * phentsize, phentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != 4) continue;   // PT_NOTE
            int at = (int)BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]);
            int end = at + (int)BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
            while (at + 12 <= end)
            {
                int nameSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(at));
                int descSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(at + 4));
                uint type = BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(at + 8));
                if (nameSize == 4 && elf.AsSpan(at + 12, 4).SequenceEqual("Xen\0"u8) && type == 18)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(at + 8), 0x7fff_ffff);
                    found = true;
                }
                at += 12 + ((nameSize + 3) & ~3) + ((descSize + 3) & ~3);
            }
        }
        return found;
    }
}
