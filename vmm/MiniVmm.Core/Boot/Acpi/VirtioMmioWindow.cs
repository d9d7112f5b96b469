namespace MiniVmm.Core.Boot.Acpi;

/// <summary>A virtio-mmio device as the guest's firmware tables describe it: its register window
/// <c>[Address, Address + Size)</c> and the GSI (IOAPIC pin) of its interrupt, which is edge-triggered, active high.</summary>
public readonly record struct VirtioMmioWindow(ulong Address, uint Size, uint Gsi);
