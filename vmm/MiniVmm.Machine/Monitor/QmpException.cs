namespace MiniVmm.Machine.Monitor;

/// <summary>The error classes a QMP client can see (the `class` member of an error reply).</summary>
public static class QmpErrorClass
{
    public const string GenericError = "GenericError";
    public const string CommandNotFound = "CommandNotFound";
    public const string DeviceNotActive = "DeviceNotActive";
}

/// <summary>
/// A command failed in a way the client should see: it becomes `{"error":{"class":..,"desc":..}}`. Thrown only by
/// command handlers and argument checks; the session catches it and keeps going.
/// </summary>
public sealed class QmpException(string errorClass, string description) : Exception(description)
{
    public string ErrorClass { get; } = errorClass;

    public static QmpException Generic(string description) => new(QmpErrorClass.GenericError, description);
}
