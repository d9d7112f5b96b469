namespace MiniVmm.Snapshot.Incremental;

/// <summary>
/// Changes cannot be tracked (the host lacks a feature, the RAM is file backed) or the changed set is unknown: the next
/// snapshot must be a full one. Not a SnapshotException: that lives in Engines, which will use this namespace, and the
/// namespaces of an assembly must not use each other in a circle (docs/ARCHITECTURE.md).
/// </summary>
public sealed class ChangeTrackingException(string message, Exception? inner = null) : Exception(message, inner);
