using System.Diagnostics;
using FluentAssertions;
using MiniVmm.Core.Boot.Acpi;

namespace MiniVmm.Core.Tests.Boot.Acpi;

/// <summary>
/// An independent reader of the tables: ACPICA's disassembler (<c>iasl -d</c>, Debian package <c>acpica-tools</c>)
/// parses each table as an OS would, checks its checksum and length, and decodes the DSDT's AML. Without iasl the
/// test fails, naming the package: it never passes without having run it. ACPICA's <c>acpiexec</c> then loads the
/// tables into its namespace, as an OS's ACPI core does, and evaluates a device's <c>_CRS</c>. (The RSDP has no header
/// of the common form, so iasl does not take it as a file; <see cref="AcpiTablesTests"/> checks it the way Linux's
/// scan does.)
/// </summary>
public sealed class AcpiDisassemblyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("minivmm-acpi-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly VirtioMmioWindow[] Devices = [new(0xd000_0000, 0x1000, 16), new(0xd000_1000, 0x1000, 17)];

    [Theory]
    [InlineData("xsdt")]
    [InlineData("facp")]
    [InlineData("apic")]
    [InlineData("dsdt")]
    public void Iasl_disassembles_each_table_without_errors(string table)
    {
        AcpiTableSet set = AcpiTables.Build(4, Devices);
        ulong at = table switch
        {
            "xsdt" => set.Xsdt,
            "facp" => set.Fadt,
            "apic" => set.Madt,
            _ => set.Dsdt,
        };
        string file = WriteTable(set, at, table);

        (int status, string output) = Run("iasl", "-d", file);

        string dsl = Path.ChangeExtension(file, ".dsl");
        status.Should().Be(0, output);
        output.Should().NotContainAny(["Error", "error ", "Warning", "Invalid", "Incorrect checksum"]);
        File.Exists(dsl).Should().BeTrue(output);
        string text = File.ReadAllText(dsl);
        if (table == "dsdt")
            text.Should().Contain("Device (VR00)").And.Contain("Device (VR01)").And.Contain("\"LNRO0005\"")
                .And.Contain("Memory32Fixed (ReadWrite,").And.Contain("0xD0001000").And.Contain("0x00000011,");
        if (table == "facp")
            text.Should().MatchRegex(@"Hardware Reduced \(V5\) : 1");
        if (table == "apic")
            text.Split("Subtable Type : 00 [Processor Local APIC]").Length.Should().Be(1 + 4);
    }

    [Fact]
    public void Acpiexec_loads_the_tables_and_evaluates_a_virtio_devices_resources()
    {
        AcpiTableSet set = AcpiTables.Build(2, Devices);
        string[] files =
        [
            WriteTable(set, set.Dsdt, "dsdt"), WriteTable(set, set.Fadt, "facp"), WriteTable(set, set.Madt, "apic"),
            WriteTable(set, set.Xsdt, "xsdt"),
        ];

        (int status, string output) = Run("acpiexec", ["-b", @"evaluate \_SB.VR01._CRS", .. files]);

        status.Should().Be(0, output);
        output.Should().Contain("1 ACPI AML tables successfully acquired and loaded")
            .And.Contain(@"Evaluation of \_SB.VR01._CRS returned object")
            .And.Contain("86 09 00 01 00 10 00 D0 00 10 00 00 89 06 00 03", "Memory32Fixed 0xd0001000+0x1000, then the interrupt")
            .And.NotContain("AE_", "no ACPICA exception").And.NotContain("rror");
    }

    private string WriteTable(AcpiTableSet set, ulong at, string name)
    {
        int offset = (int)(at - AcpiTables.Address);
        int length = (int)BitConverter.ToUInt32(set.Bytes, offset + 4);
        string file = Path.Combine(_dir, name + ".dat");
        File.WriteAllBytes(file, set.Bytes.AsSpan(offset, length).ToArray());
        return file;
    }

    private (int Status, string Output) Run(string tool, params string[] args)
    {
        ProcessStartInfo psi = new(tool, args)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir,
        };
        Process process;
        try { process = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{tool} is not installed: the ACPI table tests need ACPICA's tools; " +
                                                "install them with: apt-get install -y acpica-tools (.ci/run does)", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(60_000)) { process.Kill(); throw new TimeoutException($"{tool} did not finish within 60 s"); }
            return (process.ExitCode, stdout.Result + stderr.Result);
        }
    }
}
