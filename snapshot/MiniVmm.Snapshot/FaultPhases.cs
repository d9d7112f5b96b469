namespace MiniVmm.Snapshot;

/// <summary>
/// How write-fault stalls split up (write tracking): <paramref name="Copy"/> copying the block out of guest RAM
/// (including any wait for a free fault buffer), <paramref name="ClaimWait"/> waiting for pages another thread was
/// saving, <paramref name="Unprotect"/> removing the write protection (and, tracked, recording the write).
/// </summary>
public sealed record FaultPhases(TimeSpan Copy, TimeSpan ClaimWait, TimeSpan Unprotect);
