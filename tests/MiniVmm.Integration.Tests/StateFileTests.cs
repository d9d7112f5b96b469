using MiniVmm.Firmware;
using MiniVmm.Machine;
using MiniVmm.Machine.Snapshots;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot;
using MiniVmm.Snapshot.Format;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>One real snapshot of a writer guest (1 vCPU, 64 MiB), shared by the crafted-state tests.</summary>
public sealed class WriterSnapshotFixture : IDisposable
{
    private readonly Lazy<string> _path = new(Take);

    /// <summary>Taken on first use, so a machine without KVM (where the tests skip) never boots a guest.</summary>
    public string Path => _path.Value;

    private static string Take()
    {
        string image = GuestFiles.TempPath("state-base.mvs");
        var (run, _) = GuestRun.Boot(GuestFiles.Writer, "mb=8 sweeps=0 report_ms=0", 1, 64UL << 20);
        using (run)
        {
            run.Start();
            run.WaitUntil(() => run.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) >= 2, "two sweeps");
            var result = SnapshotHarness.Take(run, image, new SnapshotOptions());
            if (!result.Succeeded) throw new InvalidOperationException("base snapshot failed: " + result.Error);
            run.Stop();
        }
        return image;
    }

    public void Dispose()
    {
        if (_path.IsValueCreated) File.Delete(_path.Value);
    }
}

/// <summary>
/// Snapshots whose format is intact (every checksum recomputed) but whose state is wrong: every one is refused as a bad
/// file — <see cref="StateRestoreException"/> or <see cref="SnapshotFormatException"/>, which the CLI reports as exit
/// 120 — with the section named; never an internal error (exit 125), never "host lacks support" (121).
/// </summary>
public sealed class StateFileTests(WriterSnapshotFixture snapshot) : IClassFixture<WriterSnapshotFixture>
{
    private static readonly string[] VcpuParts =
        ["mp_state", "regs", "sregs", "xsave", "xcrs", "lapic", "msrs", "events", "debugregs"];

    private static readonly RestoreOptions Options = new() { Serial = new SerialTarget.None() };

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var part in VcpuParts)
        {
            data.Add($"short vcpu0.{part}");
            data.Add($"garbage vcpu0.{part}");
            data.Add($"missing vcpu0.{part}");
        }
        foreach (var c in new[]
                 {
                     "mp_state 99", "Vcpus 2 in a 1-vCPU file", "Vcpus 0", "duplicate JSON key", "unknown JSON key",
                     "null JSON field", "MemoryBytes off by a page", "version 2 of vcpu0.regs", "version 2 of vm.pit2",
                     "version 2 of dev.serial-com1", "version 0 of dev.i8042", "vm.pic0 holding pic1", "unknown section",
                     "section of a vCPU the VM lacks", "missing vm.clock", "missing dev.control", "bad serial IER",
                     "byte in the empty dev.i8042", "no Drives key", "drive that is a FIFO", "xsave of 4100 bytes",
                     "short dev.rtc-cmos", "RTC index past 0x7f",
                 })
            data.Add(c);
        return data;
    }

    /// <summary>The crafted file for a case and the text the refusal must contain (the section it names).</summary>
    private (string Path, string Names) Craft(string name)
    {
        var rng = new Random(name.GetHashCode(StringComparison.Ordinal));
        byte[] Garbage(int length) { var b = new byte[length]; rng.NextBytes(b); return b; }
        string file = name.Replace(' ', '-') + ".mvs";
        string[] words = name.Split(' ');
        switch (words[0])
        {
            case "short":
                return (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace(words[1], x => x with { Data = x.Data[..^1] })), words[1]);
            case "garbage":
                return (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace(words[1], x => x with { Data = Garbage(x.Data.Length + 5) })), words[1]);
            case "missing":
                return (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Without(words[1])), $"no section '{words[1]}'");
        }
        return name switch
        {
            "mp_state 99" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("vcpu0.mp_state", x => x with { Data = BitConverter.GetBytes(99u) })),
                "section 'vcpu0.mp_state': KVM refused"),
            "Vcpus 2 in a 1-vCPU file" => (SnapshotCrafting.Craft(snapshot.Path, file, config: c => c.Replace("\"vcpus\":1", "\"vcpus\":2")), "vcpu1."),
            "Vcpus 0" => (SnapshotCrafting.Craft(snapshot.Path, file, config: c => c.Replace("\"vcpus\":1", "\"vcpus\":0")), "0 vCPUs"),
            "duplicate JSON key" => (SnapshotCrafting.Craft(snapshot.Path, file, config: c => c.Replace("\"vcpus\":1", "\"vcpus\":1,\"vcpus\":1")), "VM configuration is malformed"),
            "unknown JSON key" => (SnapshotCrafting.Craft(snapshot.Path, file, config: c => c.Replace("\"vcpus\":1", "\"vcpus\":1,\"cpus\":4")), "VM configuration is malformed"),
            "null JSON field" => (SnapshotCrafting.Craft(snapshot.Path, file, config: c => System.Text.RegularExpressions.Regex.Replace(c, "\"command-line\":\"[^\"]*\"", "\"command-line\":null")), "VM configuration is malformed"),
            "MemoryBytes off by a page" => (SnapshotCrafting.Craft(snapshot.Path, file, config: c => c.Replace($"\"memory-bytes\":{64 << 20}", $"\"memory-bytes\":{(64 << 20) + 4096}")), "memory layout"),
            "version 2 of vcpu0.regs" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("vcpu0.regs", x => x with { Version = 2 })),
                "section 'vcpu0.regs' has version 2; this MiniVmm reads version 1"),
            "version 2 of vm.pit2" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("vm.pit2", x => x with { Version = 2 })),
                "section 'vm.pit2' has version 2; this MiniVmm reads version 1"),
            "version 2 of dev.serial-com1" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("dev.serial-com1", x => x with { Version = 2 })),
                "section 'dev.serial-com1' has version 2; this MiniVmm reads version 1"),
            "version 0 of dev.i8042" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("dev.i8042", x => x with { Version = 0 })),
                "section 'dev.i8042' has version 0; this MiniVmm reads version 1"),
            "vm.pic0 holding pic1" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("vm.pic0", x => x with { Data = s.First(y => y.Id == "vm.pic1").Data })),
                "section 'vm.pic0' holds the state of irqchip 1"),
            "unknown section" => (SnapshotCrafting.Craft(snapshot.Path, file, s => [.. s, new StateSection("vm.hpet", 1, [1, 2, 3])]), "section 'vm.hpet' belongs to nothing"),
            "section of a vCPU the VM lacks" => (SnapshotCrafting.Craft(snapshot.Path, file, s => [.. s, s.First(y => y.Id == "vcpu0.regs") with { Id = "vcpu1.regs" }]),
                "section 'vcpu1.regs' belongs to nothing"),
            "missing vm.clock" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Without("vm.clock")), "no section 'vm.clock'"),
            "missing dev.control" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Without("dev.control")), "no section 'dev.control'"),
            "bad serial IER" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("dev.serial-com1", x => x with { Data = [0xff, .. x.Data[1..]] })),
                "section 'dev.serial-com1': invalid Serial8250 state: IER 0xff"),
            "no Drives key" => (SnapshotCrafting.Craft(snapshot.Path, file, config: c => c.Replace(",\"drives\":[]", "")), "VM configuration is malformed"),
            "drive that is a FIFO" => (SnapshotCrafting.Craft(snapshot.Path, file, config: c => c.Replace("\"drives\":[]",
                $"\"drives\":[{{\"path\":\"{NewFifo()}\",\"read-only\":false,\"cache\":\"writeback\"}}]")), "is a FIFO"),
            "xsave of 4100 bytes" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("vcpu0.xsave", x => x with { Data = [.. x.Data[..4096], 0, 0, 0, 0] })),
                "vcpu0.xsave"),
            "RTC index past 0x7f" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("dev.rtc-cmos", x => x with { Data = [0x80, .. x.Data[1..]] })),
                "section 'dev.rtc-cmos': invalid CmosRtc state: index 0x80"),
            "byte in the empty dev.i8042" => (SnapshotCrafting.Craft(snapshot.Path, file, s => s.Replace("dev.i8042", x => x with { Data = [0] })),
                "section 'dev.i8042': invalid I8042 state"),
            _ => throw new ArgumentException(name),
        };
    }

    private static string NewFifo()
    {
        string path = GuestFiles.TempPath("drive.fifo");
        using var p = System.Diagnostics.Process.Start("mkfifo", [path])!;
        p.WaitForExit();
        return path;
    }

    /// <summary>The exception a restore of <paramref name="path"/> fails with; fails the test if it succeeds.</summary>
    private static Exception RestoreFails(string path)
    {
        Vm? vm = null;
        try
        {
            vm = VmRestore.Restore(path, Options, GuestRun.Loggers);
        }
        catch (Exception e)
        {
            return e;
        }
        finally
        {
            vm?.Dispose();
        }
        throw new Xunit.Sdk.XunitException($"{path} restored although its state is wrong");
    }

    [KvmFact]
    public void Every_device_on_the_buses_is_persisted_or_declared_stateless()
    {
        var (run, _) = GuestRun.Boot(GuestFiles.Hello, "", 1, 64UL << 20);
        using (run)
        {
            var ranges = run.Vm.Pio.Ranges.Concat(run.Vm.Mmio.Ranges).ToList();
            ranges.Should().NotBeEmpty();
            foreach (var range in ranges)
                run.Vm.Devices.Describe(range.Device).Should().NotBeNull($"{range} must be persisted or declared stateless");
            // Persisted means a section in a real snapshot of the same machine.
            using var file = SnapshotFile.Open(snapshot.Path);
            ranges.Select(r => run.Vm.Devices.Describe(r.Device)!).Where(d => d.StartsWith("section ", StringComparison.Ordinal))
                .Should().BeSubsetOf(file.Sections.Select(s => $"section '{s.Id}'"));
        }
    }

    [KvmFact]
    public void The_crafted_copy_of_an_unchanged_snapshot_restores_and_runs()
    {
        // The crafting itself is sound: with nothing changed, the copy restores and the writer sweeps on, consistent.
        string path = SnapshotCrafting.Craft(snapshot.Path, "unchanged.mvs");
        var (restored, _) = SnapshotHarness.Restore(path);
        using (restored)
        {
            ulong generation = restored.VcpuStatus(0, GuestAbi.VcpuStatus.Generation);
            restored.WaitUntil(() => restored.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) > generation + 2, "more sweeps after the restore");
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
            restored.Stop();
        }
        File.Delete(path);
    }

    [KvmFact]
    public void A_snapshot_from_before_the_rtc_restores_with_a_fresh_one_and_runs()
    {
        // Snapshots written before MiniVmm had a CMOS RTC have no dev.rtc-cmos section: the RTC is created fresh.
        string path = SnapshotCrafting.Craft(snapshot.Path, "no-rtc.mvs", s => s.Without("dev.rtc-cmos"));
        var (restored, _) = SnapshotHarness.Restore(path);
        using (restored)
        {
            restored.Vm.Devices.Ids.Should().Contain("rtc-cmos");
            ulong generation = restored.VcpuStatus(0, GuestAbi.VcpuStatus.Generation);
            restored.WaitUntil(() => restored.VcpuStatus(0, GuestAbi.VcpuStatus.Generation) > generation + 2, "more sweeps after the restore");
            restored.Status(GuestAbi.Status.TotalFailures).Should().Be(0);
            restored.Stop();
        }
        File.Delete(path);
    }

    [KvmTheory]
    [MemberData(nameof(Cases))]
    public void A_checksum_valid_file_with_bad_state_is_refused_naming_the_section(string name)
    {
        var (path, names) = Craft(name);
        var e = RestoreFails(path);
        e.Should().Match<Exception>(x => x is StateRestoreException || x is SnapshotFormatException, $"{name}: {e}");
        e.Message.Should().Contain(names, name);
        File.Delete(path);
    }

    [KvmFact]
    public void The_command_line_exits_120_with_one_line_naming_the_section()
    {
        // The first three were exit 125 with a stack trace (thrown on the vCPU thread and wrapped); the last restored
        // silently.
        foreach (var (name, names) in new[]
                 {
                     ("mp_state 99", "vcpu0.mp_state"), ("Vcpus 2 in a 1-vCPU file", "vcpu1."), ("short vcpu0.sregs", "vcpu0.sregs"),
                     ("version 2 of dev.serial-com1", "section 'dev.serial-com1' has version 2; this MiniVmm reads version 1"),
                 })
        {
            var (path, _) = Craft(name);
            var r = MinivmmProcess.Run("restore", path, "--serial", "none");
            r.ExitCode.Should().Be(120, $"{name}: {r.Stderr}");
            r.Stderr.Should().StartWith($"minivmm: cannot restore '{path}': ").And.Contain(names);
            r.Stderr.Should().NotContain("   at ", "a bad file is a message, not a stack trace");
            File.Delete(path);
        }
    }

    /// <summary>
    /// Property: any of a family of content defects — a section truncated or extended, dropped, of another version, or
    /// a VM config that is not valid JSON for this MiniVmm — is refused as a bad file. Seeded, so a failure reproduces.
    /// </summary>
    [KvmFact]
    public void Many_random_content_defects_are_all_refused_as_bad_files()
    {
        var rng = new Random(20261201);
        List<StateSection> baseSections;
        string baseConfig;
        using (var f = SnapshotFile.Open(snapshot.Path))
        {
            baseSections = f.Sections.ToList();
            baseConfig = f.Info.VmConfig;
        }
        for (int i = 0; i < 60; i++)
        {
            var (what, path) = Mutate(rng, i, baseSections, baseConfig);
            var e = RestoreFails(path);
            e.Should().Match<Exception>(x => x is StateRestoreException || x is SnapshotFormatException, $"case {i} ({what}): {e}");
            File.Delete(path);
        }
    }

    private (string What, string Path) Mutate(Random rng, int i, List<StateSection> sections, string config)
    {
        string file = $"random-{i}.mvs";
        var pick = sections[rng.Next(sections.Count)];
        var nonEmpty = sections.Where(s => s.Data.Length > 0).ToList();
        switch (rng.Next(5))
        {
            case 0:
            {
                var s = nonEmpty[rng.Next(nonEmpty.Count)];
                int cut = rng.Next(1, Math.Min(7, s.Data.Length) + 1); // never a whole MSR entry (16 bytes)
                return ($"{s.Id} cut by {cut}", SnapshotCrafting.Craft(snapshot.Path, file, l => l.Replace(s.Id, x => x with { Data = x.Data[..^cut] })));
            }
            case 1:
            {
                var extra = new byte[rng.Next(1, 8)];
                rng.NextBytes(extra);
                return ($"{pick.Id} extended by {extra.Length}", SnapshotCrafting.Craft(snapshot.Path, file, l => l.Replace(pick.Id, x => x with { Data = [.. x.Data, .. extra] })));
            }
            case 2:
                return ($"{pick.Id} dropped", SnapshotCrafting.Craft(snapshot.Path, file, l => l.Without(pick.Id)));
            case 3:
            {
                ushort version = rng.Next(3) == 0 ? (ushort)0 : (ushort)rng.Next(2, 65536);
                return ($"{pick.Id} version {version}", SnapshotCrafting.Craft(snapshot.Path, file, l => l.Replace(pick.Id, x => x with { Version = version })));
            }
            default:
            {
                string bad = BadConfig(rng, config);
                return ($"config {bad}", SnapshotCrafting.Craft(snapshot.Path, file, config: _ => bad));
            }
        }
    }

    private static string BadConfig(Random rng, string config) => rng.Next(7) switch
    {
        0 => config[..rng.Next(0, config.Length - 1)],                                           // cut short
        1 => config.Replace("\"vcpus\":1", $"\"vcpus\":{rng.Next(2, 17)}"),                       // more vCPUs than the state
        2 => config.Replace("\"vcpus\":1", "\"vcpus\":\"one\""),                                 // wrong type
        3 => config.Replace("\"format-version\":2", $"\"format-version\":{rng.Next(3, 100)}"),       // unknown config version
        4 => config.Replace($"\"memory-bytes\":{64 << 20}", $"\"memory-bytes\":{(64 << 20) + 4096 * rng.Next(1, 100)}"),
        5 => config.Replace("{", "{\"memory-bytes\":1,"),                                          // duplicate key
        _ => "[" + config + "]",                                                                  // not an object
    };
}
