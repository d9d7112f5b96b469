using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Snapshot.Format;

/// <summary>
/// The state section: <c>u32 count, u32 reserved, u8[16] snapshot id</c> (the header's), then per section
/// <c>u16 id length, id (UTF-8), u16 version, u32 data length, data</c>. Ids are unique. The whole section is at most <see cref="SnapshotFormat.MaxStateBytes"/>.
/// Its XXH3-64 is kept in the trailer.
/// </summary>
internal static class StateCodec
{
    /// <summary>Bytes before the first section.</summary>
    public const int PrefixSize = 8 + SnapshotFormat.SnapshotIdSize;

    public static byte[] Encode(IReadOnlyList<StateSection> sections, Guid snapshotId)
    {
        ArgumentNullException.ThrowIfNull(sections);
        if (sections.Count > SnapshotFormat.MaxSections)
            throw new ArgumentException($"{sections.Count} state sections (limit {SnapshotFormat.MaxSections})", nameof(sections));
        var ids = new HashSet<string>(StringComparer.Ordinal);
        long length = PrefixSize;
        var encodedIds = new byte[sections.Count][];
        for (int i = 0; i < sections.Count; i++)
        {
            var s = sections[i] ?? throw new ArgumentException($"state section {i} is null", nameof(sections));
            ArgumentNullException.ThrowIfNull(s.Id, $"sections[{i}].Id");
            ArgumentNullException.ThrowIfNull(s.Data, $"sections[{i}].Data");
            encodedIds[i] = Encoding.UTF8.GetBytes(s.Id);
            if (encodedIds[i].Length is 0 or > SnapshotFormat.MaxSectionIdBytes)
                throw new ArgumentException($"state section id '{s.Id}' must be 1..{SnapshotFormat.MaxSectionIdBytes} bytes", nameof(sections));
            if (!ids.Add(s.Id)) throw new ArgumentException($"duplicate state section id '{s.Id}'", nameof(sections));
            length += 2 + encodedIds[i].Length + 2 + 4 + (long)s.Data.Length;
            if (length > SnapshotFormat.MaxStateBytes)
                throw new ArgumentException(
                    $"the state sections exceed the {SnapshotFormat.MaxStateBytes >> 20} MiB limit", nameof(sections));
        }
        var b = new byte[length];
        var w = b.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(w, (uint)sections.Count);
        SnapshotFormat.WriteId(snapshotId, w[8..]);
        int p = PrefixSize;
        for (int i = 0; i < sections.Count; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(w[p..], (ushort)encodedIds[i].Length); p += 2;
            encodedIds[i].CopyTo(w[p..]); p += encodedIds[i].Length;
            BinaryPrimitives.WriteUInt16LittleEndian(w[p..], sections[i].Version); p += 2;
            BinaryPrimitives.WriteUInt32LittleEndian(w[p..], (uint)sections[i].Data.Length); p += 4;
            sections[i].Data.CopyTo(w[p..]); p += sections[i].Data.Length;
        }
        return b;
    }

    /// <summary>Decodes the state of the snapshot whose header carries <paramref name="snapshotId"/>.</summary>
    public static IReadOnlyList<StateSection> Decode(ReadOnlySpan<byte> data, Guid snapshotId, string what)
    {
        string ctx = $"{what} state section";
        var r = new SpanReader(data, ctx);
        uint count = r.U32("section count");
        if (r.U32("reserved") != 0) throw new SnapshotFormatException($"{ctx} is corrupt: reserved field is not zero");
        var owner = SnapshotFormat.ReadId(r.Bytes(SnapshotFormat.SnapshotIdSize, "snapshot id"));
        if (owner != snapshotId)
            throw new SnapshotFormatException(
                $"{ctx} belongs to snapshot {owner}, the header to {snapshotId}: the header was joined to another snapshot's body");
        // Each section takes at least 9 bytes: the count can't exceed what is there.
        if (count > SnapshotFormat.MaxSections || count > (uint)(r.Remaining / 9))
            throw new SnapshotFormatException($"{ctx} is corrupt: section count {count} does not fit its {data.Length} bytes");
        var list = new List<StateSection>((int)count);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            int idLength = r.U16($"section {i} id length");
            if (idLength == 0) throw new SnapshotFormatException($"{ctx} is corrupt: section {i} has an empty id");
            string id = r.String(idLength, SnapshotFormat.MaxSectionIdBytes, $"section {i} id");
            ushort version = r.U16($"section '{id}' version");
            uint length = r.U32($"section '{id}' length");
            if (length > r.Remaining)
                throw new SnapshotFormatException($"{ctx} is corrupt: section '{id}' claims {length} bytes but {r.Remaining} remain");
            var bytes = r.Bytes((int)length, $"section '{id}' data").ToArray();
            if (!ids.Add(id)) throw new SnapshotFormatException($"{ctx} is corrupt: duplicate section id '{id}'");
            list.Add(new StateSection(id, version, bytes));
        }
        r.ExpectEnd();
        return list;
    }
}
