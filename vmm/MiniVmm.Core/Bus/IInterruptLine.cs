namespace MiniVmm.Core.Bus;

/// <summary>An interrupt line into the (in-kernel) interrupt controller. Devices raise and lower it; they never know
/// how it is delivered (KVM_IRQ_LINE, an irqfd, or a test double).</summary>
public interface IInterruptLine
{
    /// <summary>Drives the line to <paramref name="asserted"/>. Idempotent.</summary>
    void SetLevel(bool asserted);
}

/// <summary>An interrupt line that goes nowhere: for devices wired without an interrupt and for tests.</summary>
public sealed class NullInterruptLine : IInterruptLine
{
    public static readonly NullInterruptLine Instance = new();
    public bool Asserted { get; private set; }
    public void SetLevel(bool asserted) => Asserted = asserted;
}
