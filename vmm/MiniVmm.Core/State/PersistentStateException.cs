namespace MiniVmm.Core.State;

/// <summary>
/// Saved state handed to <see cref="IPersistent{TSelf,TArgs}.RestoreState"/> is malformed or impossible (a corrupted or
/// hostile snapshot). The restore refuses the snapshot as a bad file, naming the section.
/// </summary>
public class PersistentStateException : Exception
{
    public PersistentStateException(string component, string message, Exception? inner = null)
        : base($"invalid {component} state: {message}", inner)
    {
        Component = component;
    }

    /// <summary>The component type whose state was rejected, e.g. "Serial8250".</summary>
    public string Component { get; }
}
