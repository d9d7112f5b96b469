using MiniVmm.Core.Boot.Acpi;
using MiniVmm.Core.Memory;

namespace MiniVmm.Core.Boot;

/// <summary>What a vCPU needs to start a loaded PVH image: jump to <see cref="Entry"/> in 32-bit protected mode with
/// paging off and EBX = <see cref="StartInfoGpa"/> (the PVH boot ABI). Application processors, if the image named an
/// entry for them, start at <see cref="ApEntry"/>.</summary>
public sealed record PvhBootInfo(uint Entry, uint? ApEntry, uint StartInfoGpa);

/// <summary>
/// Loads a <see cref="PvhElfImage"/> into guest RAM and writes the PVH boot information.
/// </summary>
/// <remarks>
/// Low memory layout (guest physical; everything the loader writes outside the image's own segments):
/// <code>
/// 0x0000-0x0fff  first page: left unused (a null-pointer trap for the guest); no segment may overlap it
/// 0x1000-0x5fff  free for the image
/// 0x6000-0x6037  hvm_start_info (56 bytes, version 1)            = StartInfoGpa
/// 0x6038-...     hvm_memmap_table_entry[n] (24 bytes each, n &lt;= 128) = MemoryMapGpa
/// 0x7000-0x7fff  kernel command line, NUL-terminated (&lt;= 4095 bytes + NUL) = CommandLineGpa
/// 0x8000-        free for the image
/// 0xe0000-       ACPI tables when the caller passes them (rsdp_paddr names the RSDP); no segment may overlap them
/// </code>
/// The boot information area 0x6000-0x7fff is zeroed before it is written. Every check happens before the first write,
/// so a rejected image leaves guest RAM untouched.
/// </remarks>
public static class PvhLoader
{
    /// <summary>End of the first page, which no segment may overlap.</summary>
    public const ulong FirstPageEnd = 0x1000;

    /// <summary>Start of the boot information area the loader owns.</summary>
    public const ulong BootInfoAreaStart = 0x6000;

    /// <summary>End (exclusive) of the boot information area.</summary>
    public const ulong BootInfoAreaEnd = 0x8000;

    /// <summary>Where <see cref="HvmStartInfo"/> goes; passed to the guest in EBX.</summary>
    public const uint StartInfoGpa = 0x6000;

    /// <summary>Where the memory map goes: right after the start info.</summary>
    public const uint MemoryMapGpa = StartInfoGpa + HvmStartInfo.Size;

    /// <summary>Where the NUL-terminated command line goes.</summary>
    public const uint CommandLineGpa = 0x7000;

    /// <summary>Longest command line in bytes (UTF-8), not counting the terminating NUL.</summary>
    public const int MaxCommandLineBytes = 4095;

    /// <summary>Most memory map entries (they must fit between <see cref="MemoryMapGpa"/> and
    /// <see cref="CommandLineGpa"/>).</summary>
    public const int MaxMemoryMapEntries = 128;

    /// <summary>
    /// The PVH memory map for RAM in <paramref name="ranges"/>: each range is RAM, except that the BIOS area holding
    /// the ACPI tables (<see cref="AcpiTables.Address"/> to 1 MiB) is reserved when the first range covers it, so a
    /// guest that trusts the map (a PVH Linux kernel) does not reuse the tables' memory.
    /// </summary>
    public static IReadOnlyList<MemoryMapEntry> MemoryMapFor(IReadOnlyList<(ulong GuestAddress, ulong Size)> ranges)
    {
        var map = new List<MemoryMapEntry>();
        foreach (var (gpa, size) in ranges)
        {
            if (gpa == 0 && size > AcpiTables.AreaEnd)
            {
                map.Add(MemoryMapEntry.Ram(0, AcpiTables.Address));
                map.Add(MemoryMapEntry.Reserved(AcpiTables.Address, AcpiTables.AreaEnd - AcpiTables.Address));
                map.Add(MemoryMapEntry.Ram(AcpiTables.AreaEnd, size - AcpiTables.AreaEnd));
            }
            else map.Add(MemoryMapEntry.Ram(gpa, size));
        }
        return map;
    }

    /// <summary>Checks that the image, command line and memory map fit, copies the segments (zero-filling bss) and
    /// writes <c>hvm_start_info</c>, the memory map, the command line and, if given, the ACPI tables (a PVH Linux kernel
    /// finds them through <c>rsdp_paddr</c>).</summary>
    /// <exception cref="BootImageException">Something does not fit; the message says what.</exception>
    public static PvhBootInfo Load(GuestMemory memory, PvhElfImage image, string cmdline,
        IReadOnlyList<MemoryMapEntry> memoryMap, AcpiTableSet? acpi = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(cmdline);
        ArgumentNullException.ThrowIfNull(memoryMap);

        if (!memory.Contains(new GuestAddress(0), BootInfoAreaEnd))
            throw new BootImageException(
                $"guest RAM (size 0x{memory.Size:x}) is too small for the PVH boot information area " +
                $"(0x0-0x{BootInfoAreaEnd - 1:x} must be RAM)");

        byte[] cmdlineBytes = BootCommandLine.Encode(cmdline, MaxCommandLineBytes, $"the limit is {MaxCommandLineBytes}");
        ValidateMemoryMap(memoryMap);
        foreach (ImageSegment segment in image.Segments)
            ValidateSegment(memory, segment);
        if (acpi is not null)
            ValidateAcpiArea(memory, image, acpi);

        foreach (ImageSegment segment in image.Segments)
        {
            memory.Write(new GuestAddress(segment.PhysicalAddress), segment.Data.Span);
            ulong bss = segment.MemorySize - (ulong)segment.Data.Length;
            if (bss > 0)
                memory.Clear(new GuestAddress(segment.PhysicalAddress + (ulong)segment.Data.Length), bss);
        }

        memory.Clear(new GuestAddress(BootInfoAreaStart), BootInfoAreaEnd - BootInfoAreaStart);
        for (int i = 0; i < memoryMap.Count; i++)
        {
            MemoryMapEntry e = memoryMap[i];
            memory.Write(new GuestAddress(MemoryMapGpa + (ulong)(i * HvmMemoryMapEntry.Size)), new HvmMemoryMapEntry
            {
                Address = e.Address,
                Length = e.Size,
                Type = (uint)e.Type,
            });
        }
        memory.Write(new GuestAddress(CommandLineGpa), cmdlineBytes); // the area was zeroed: the NUL follows
        if (acpi is not null)
            memory.Write(new GuestAddress(AcpiTables.Address), acpi.Bytes);
        memory.Write(new GuestAddress(StartInfoGpa), new HvmStartInfo
        {
            Magic = HvmStartInfo.MagicValue,
            Version = HvmStartInfo.CurrentVersion,
            CommandLineAddress = CommandLineGpa,
            MemoryMapAddress = MemoryMapGpa,
            MemoryMapEntries = (uint)memoryMap.Count,
            RsdpAddress = acpi?.Rsdp ?? 0,
        });

        return new PvhBootInfo(image.Entry, image.ApEntry, StartInfoGpa);
    }

    private static void ValidateMemoryMap(IReadOnlyList<MemoryMapEntry> memoryMap)
    {
        int count = memoryMap.Count;
        if (count == 0)
            throw new BootImageException("the memory map is empty");
        if (count > MaxMemoryMapEntries)
            throw new BootImageException(
                $"the memory map has {count} entries; the limit is {MaxMemoryMapEntries}");
        var sorted = new MemoryMapEntry[count];
        for (int i = 0; i < count; i++)
        {
            MemoryMapEntry e = memoryMap[i];
            if (e.Size == 0)
                throw new BootImageException($"memory map entry {i} at 0x{e.Address:x} has size 0");
            if (e.Address > ulong.MaxValue - e.Size)
                throw new BootImageException(
                    $"memory map entry {i}: 0x{e.Address:x} + 0x{e.Size:x} overflows the address space");
            if (e.Type == 0)
                throw new BootImageException($"memory map entry {i} at 0x{e.Address:x} has type 0");
            sorted[i] = e;
        }
        Array.Sort(sorted, (a, b) => a.Address.CompareTo(b.Address));
        for (int i = 1; i < count; i++)
        {
            if (sorted[i].Address < sorted[i - 1].Address + sorted[i - 1].Size)
                throw new BootImageException(
                    $"memory map entries 0x{sorted[i - 1].Address:x}+0x{sorted[i - 1].Size:x} and " +
                    $"0x{sorted[i].Address:x}+0x{sorted[i].Size:x} overlap");
        }
    }

    private static void ValidateAcpiArea(GuestMemory memory, PvhElfImage image, AcpiTableSet acpi)
    {
        ulong start = AcpiTables.Address, end = start + (ulong)acpi.Bytes.Length;
        if (!memory.Contains(new GuestAddress(start), end - start))
            throw new BootImageException($"guest RAM does not cover the ACPI tables' area 0x{start:x}-0x{end - 1:x}");
        foreach (ImageSegment s in image.Segments)
            if (s.PhysicalAddress < end && start < s.EndAddress)
                throw new BootImageException(
                    $"segment 0x{s.PhysicalAddress:x}-0x{s.EndAddress - 1:x} overlaps the ACPI tables (0x{start:x}-0x{end - 1:x})");
    }

    private static void ValidateSegment(GuestMemory memory, ImageSegment segment)
    {
        ulong start = segment.PhysicalAddress;
        ulong end = segment.EndAddress;
        string range = $"segment 0x{start:x}-0x{end - 1:x}";
        if (!memory.Contains(new GuestAddress(start), segment.MemorySize))
            throw new BootImageException(
                $"{range} lies outside guest RAM (size 0x{memory.Size:x} = {memory.Size >> 20} MiB)");
        if (start < FirstPageEnd)
            throw new BootImageException(
                $"{range} overlaps the first page (0x0-0x{FirstPageEnd - 1:x}), which must stay unused");
        if (start < BootInfoAreaEnd && BootInfoAreaStart < end)
            throw new BootImageException(
                $"{range} overlaps the PVH boot information area (0x{BootInfoAreaStart:x}-0x{BootInfoAreaEnd - 1:x})");
    }
}
