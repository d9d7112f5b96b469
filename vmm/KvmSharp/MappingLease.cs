namespace KvmSharp;

/// <summary>A mapping held alive (a SafeHandle reference) for the duration of one kernel call on part of it.</summary>
internal ref struct MappingLease
{
    private readonly MemoryMapping _mapping;
    private bool _added;

    public MappingLease(MemoryMapping mapping, ulong offset)
    {
        _mapping = mapping;
        _added = false;
        mapping.DangerousAddRef(ref _added);
        Address = (ulong)mapping.DangerousGetAddress() + offset;
    }

    /// <summary>The host address of the leased offset.</summary>
    public ulong Address { get; }

    public void Dispose()
    {
        if (_added) _mapping.DangerousRelease();
        _added = false;
    }
}
