using Iced.Intel;
using MiniVmm.Firmware.Elf;
using MiniVmm.Machine;
using MiniVmm.Tests.Shared;
using static Iced.Intel.AssemblerRegisters;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// The Linux 64-bit boot protocol end to end: Debian's stock bzImage under MiniVmm against the same kernel under QEMU,
/// a crafted vmlinux that reports what it found at its entry and then triple-faults, and bad kernels and initrds
/// through the CLI (exit 120).
/// </summary>
public sealed class LinuxBootTests
{
    /// <summary>The decompressor's first line with <c>earlyprintk=ttyS0 nokaslr</c> (Debian's kernel has no
    /// CONFIG_X86_VERBOSE_BOOTUP, so its other early messages are compiled out; everything after it comes once the
    /// decompression is done, minutes later under this host's emulator).</summary>
    private const string KaslrLine = "KASLR disabled: 'nokaslr' on cmdline.";
    private const string StockCmdline = "console=ttyS0 earlyprintk=ttyS0 nokaslr";

    private static string Qemu()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            string path = Path.Combine(dir, "qemu-system-x86_64");
            if (File.Exists(path)) return path;
        }
        throw new InvalidOperationException("qemu-system-x86_64 is needed to compare boots: apt-get install qemu-system-x86 (.ci/run does)");
    }

    [KvmFact]
    public void Stock_debian_bzImage_prints_the_same_first_console_lines_as_under_qemu()
    {
        string kernel = DebianKernel.Path;
        string qemu = Qemu();
        // Both at once, as one run: the same kernel and command line, each until its decompressor's first line.
        using var mini = ConsoleCapture.Start("dotnet",
            [MinivmmProcess.DllPath, "run", "--kernel", kernel, "--cmdline", StockCmdline, "--mem", "512M"]);
        using var q = ConsoleCapture.Start(qemu,
            ["-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "512M", "-nographic", "-no-reboot",
             "-kernel", kernel, "-append", StockCmdline]);
        bool miniReached = mini.WaitFor(l => l.Contains(KaslrLine), TimeSpan.FromSeconds(45));
        bool qemuReached = q.WaitFor(l => l.Contains(KaslrLine), TimeSpan.FromSeconds(15));
        string both = $"MiniVmm:\n{mini.Transcript()}\nQEMU:\n{q.Transcript()}";

        qemuReached.Should().BeTrue("QEMU boots the same kernel to the decompressor\n" + both);
        miniReached.Should().BeTrue("MiniVmm's 64-bit entry reaches the decompressor's console\n" + both);
        // QEMU enters through the real-mode setup code, which prints a line or two of its own ("Probing EDD ...")
        // first; MiniVmm enters at startup_64 past it. From the decompressor on, the lines are the same.
        var miniLines = mini.Lines;
        var qemuLines = q.Lines;
        int from = qemuLines.ToList().FindIndex(l => l.Contains(KaslrLine));
        miniLines.Should().NotBeEmpty();
        miniLines[0].Should().Be(KaslrLine, both);
        from.Should().BeGreaterThanOrEqualTo(0, both);
        // Every line MiniVmm printed, QEMU printed too, in the same order (QEMU may have got further, not less far).
        qemuLines.Count.Should().BeGreaterThanOrEqualTo(from + miniLines.Count, "QEMU printed at least as far\n" + both);
        miniLines.Should().Equal(qemuLines.Skip(from).Take(miniLines.Count), both);
    }

    /// <summary>A vmlinux of a few instructions in long mode: checks what the 64-bit protocol promises at its entry
    /// (CS = __BOOT_CS, RSI = the zero page with "HdrS" in it), prints the command line and the initrd's bytes that
    /// boot_params point to, then executes ud2 with no IDT: a triple fault (or, with <paramref name="halt"/>, halts with
    /// interrupts off for ever).</summary>
    private static byte[] ProbeKernel(bool halt = false)
    {
        const ulong load = 0x1000000;
        var a = new Assembler(64);
        var fail = a.CreateLabel();
        var print = a.CreateLabel();
        var loop = a.CreateLabel();
        var done = a.CreateLabel();
        var ok = a.CreateLabel();
        a.mov(ax, cs);
        a.cmp(ax, 0x10);
        a.jne(fail);
        a.cmp(__dword_ptr[rsi + 0x202], 0x53726448);
        a.jne(fail);
        a.mov(edi, __dword_ptr[rsi + 0x228]);        // cmd_line_ptr
        a.mov(ecx, 4096);
        a.call(print);
        a.mov(edi, __dword_ptr[rsi + 0x218]);        // ramdisk_image
        a.mov(ecx, __dword_ptr[rsi + 0x21c]);        // ramdisk_size
        a.call(print);
        a.jmp(ok);
        a.Label(ref fail);
        a.mov(dx, 0x3f8);
        a.mov(al, (byte)'!');
        a.@out(dx, al);
        a.Label(ref ok);
        if (halt)
        {
            a.hlt();
            a.jmp(ok);
        }
        else
            a.ud2();
        // print: up to ECX bytes from RDI until a NUL, then a newline.
        a.Label(ref print);
        a.mov(dx, 0x3f8);
        a.Label(ref loop);
        a.test(ecx, ecx);
        a.jz(done);
        a.mov(al, __byte_ptr[rdi]);
        a.test(al, al);
        a.jz(done);
        a.@out(dx, al);
        a.inc(rdi);
        a.dec(ecx);
        a.jmp(loop);
        a.Label(ref done);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        a.ret();
        var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), load);
        byte[] code = stream.ToArray();
        // No PVH note: MiniVmm boots it with the Linux 64-bit protocol.
        return Elf64Writer.Write(load, [new ElfSegment(load, code, 0x10000)], []);
    }

    [KvmFact]
    public void Vmlinux_sees_cmdline_and_initrd_and_its_triple_fault_stops_the_vm_with_a_report()
    {
        string kernel = GuestFiles.Write("probe-vmlinux.elf", ProbeKernel());
        string initrd = GuestFiles.Write("probe.initrd", "initrd-bytes-ok"u8.ToArray());
        var r = MinivmmProcess.Run("run", "--kernel", kernel, "--initrd", initrd, "--cmdline", "hello=linux", "--mem", "64M", "--rng");

        r.ExitCode.Should().Be(VmExitStatus.ExitTripleFault, r.Stderr);
        var console = r.Stdout.Split('\n');
        console.Should().Contain(l => l.StartsWith("hello=linux console=ttyS0 tsc_early_khz=", StringComparison.Ordinal)
                                      && l.EndsWith(" virtio_mmio.device=4K@0xd0000000:16", StringComparison.Ordinal),
            "the kernel reads the command line, with MiniVmm's defaults and device announcements appended, through boot_params\n" + r.Stdout);
        console.Should().Contain("initrd-bytes-ok", "ramdisk_image/ramdisk_size point at the initrd\n" + r.Stdout);
        r.Stderr.Should().Contain("triple fault").And.Contain("rip=").And.Contain("ud2", "registers and the disassembly");
        r.Stderr.Should().Contain("last console lines").And.Contain("| initrd-bytes-ok", "the guest's last words");
    }

    [KvmFact]
    public void Snapshot_of_a_linux_boot_records_the_initrd_and_restores()
    {
        string kernel = GuestFiles.Write("probe-halt-vmlinux.elf", ProbeKernel(halt: true));
        string initrd = GuestFiles.Write("probe-halt.initrd", "initrd-bytes-ok"u8.ToArray());
        string image = GuestFiles.TempPath("linux.mvs");
        var run = MinivmmProcess.Run("run", "--kernel", kernel, "--initrd", initrd, "--cmdline", "hello=linux", "--mem", "64M",
            "--snapshot-to", image, "--snapshot-after", "300ms", "--exit-after-snapshot");
        run.ExitCode.Should().Be(0, run.Stderr);
        run.Stdout.Should().Contain("initrd-bytes-ok");

        var printed = MinivmmProcess.Run("restore", "--print-config", image);
        printed.ExitCode.Should().Be(0, printed.Stderr);
        var config = System.Text.Json.Nodes.JsonNode.Parse(printed.Stdout)!.AsObject();
        ((string?)config["kernel"]).Should().Be(kernel);
        ((string?)config["initrd"]).Should().Be(initrd);
        ((string?)config["cmdline"]).Should().Be("hello=linux", "without the console= and tsc_early_khz= MiniVmm appended");

        // Restore rebuilds the machine from the snapshot alone: the initrd's bytes are in the saved RAM.
        File.Delete(initrd);
        using (var restore = MinivmmProcess.Start("restore", image, "--serial", "none", "--log-level", "information"))
        {
            var stderr = restore.StandardError.ReadToEndAsync();
            Thread.Sleep(1000);
            restore.HasExited.Should().BeFalse("the restored guest halts for ever: " + (restore.HasExited ? stderr.Result : ""));
            restore.Kill(entireProcessTree: false);
            restore.WaitForExit(10_000).Should().BeTrue();
        }
        File.Delete(image);
    }

    [KvmFact]
    public void Initrd_with_a_pvh_kernel_is_refused()
    {
        string initrd = GuestFiles.Write("pvh.initrd", [1, 2, 3]);
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Hello, "--initrd", initrd);
        r.ExitCode.Should().Be(120, r.Stderr);
        r.Stderr.Should().Contain("--initrd needs a Linux kernel");
    }

    public static TheoryData<string, string, string[]> BadLinuxInputs() => new()
    {
        { "bad-magic", "bad magic: no \"HdrS\"", [] },
        { "old-protocol", "boot protocol 2.11 is too old", [] },
        { "32-bit", "XLF_KERNEL_64 is clear", [] },
        { "truncated", "truncated bzImage", [] },
        { "stock", "init_size", ["--mem", "32M"] },
        { "stock", "this kernel accepts at most 2047", ["--cmdline", new string('x', 2100)] },
        { "stock", "more than guest RAM", ["--mem", "32M", "--initrd", "BIG"] },
        { "stock", "medium.initrd: the initrd is 20971520 bytes (20 MiB) but only", ["--mem", "80M", "--initrd", "MEDIUM"] },
        { "stock", "initrd '/nonexistent/initrd' does not exist", ["--initrd", "/nonexistent/initrd"] },
    };

    [KvmTheory]
    [MemberData(nameof(BadLinuxInputs))]
    public void Bad_linux_kernels_and_initrds_exit_120_with_the_reason(string variant, string reason, string[] extra)
    {
        byte[] file = DebianKernel.Bytes();
        switch (variant)
        {
            case "bad-magic": file[0x202] = (byte)'X'; break;
            case "old-protocol": file[0x206] = 0x0b; break;
            case "32-bit": file[0x236] &= 0xfe; break;
            case "truncated": file = file[..0x230]; break;
        }
        string kernel = variant == "stock" ? DebianKernel.Path : GuestFiles.Write($"bz-{variant}", file);
        var args = new List<string> { "run", "--kernel", kernel };
        foreach (string e in extra)
            args.Add(e switch
            {
                "BIG" => GuestFiles.Write("big.initrd", new byte[40 << 20]),
                "MEDIUM" => GuestFiles.Write("medium.initrd", new byte[20 << 20]),
                _ => e,
            });
        var r = MinivmmProcess.Run([.. args]);
        r.ExitCode.Should().Be(120, r.Stderr);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().ContainSingle(r.Stderr);
        lines[0].Should().StartWith("minivmm: ").And.Contain(reason);
    }
}
