namespace KvmSharp;

/// <summary>Which offloaded frames a tap may hand to its reader (TUN_F_* of TUNSETOFFLOAD).</summary>
[Flags]
public enum TapOffloads : uint
{
    None = 0,
    Checksum = 0x01,
    Tso4 = 0x02,
    Tso6 = 0x04,
    TsoEcn = 0x08,
    Ufo = 0x10,
}
