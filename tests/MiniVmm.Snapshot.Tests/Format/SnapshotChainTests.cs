using MiniVmm.Snapshot.ObjectStore;
using MiniVmm.Snapshot.Tests.ObjectStore;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Snapshot.Tests.Format;

/// <summary>
/// Incremental links (format 2.1) and chains without a VM: a full base and links written through the file sink with a
/// parent, resolved by content, read page by page, merged, and refused when a parent is missing, replaced, damaged or
/// forms a cycle.
/// </summary>
public sealed class SnapshotChainTests : IDisposable
{
    private const int Page = SnapshotFormat.PageSize;
    private const int Pages = 40;
    private readonly TempDirectory _dir = new();
    private static readonly IReadOnlyList<StateSection> State = [new("vcpu0", 1, [9, 8, 7])];

    private static SnapshotHeaderInfo Info(SnapshotParent? parent) =>
        new SnapshotHeaderInfo("write-tracking", "{\"test\":1}", "Test CPU", [new SnapshotRegion(0, Pages * Page)]) { Parent = parent };

    private static byte[] Content(long page, int generation) => Scenario.Content(0, page, generation);

    /// <summary>Writes a link holding <paramref name="pages"/> (null content = a page that became zero).</summary>
    private (string Path, SnapshotParent Identity) Write(string name, SnapshotParent? parent, IEnumerable<(long Page, byte[]? Data)> pages,
        Guid? id = null, IReadOnlyList<StateSection>? state = null)
    {
        string path = _dir.File(name);
        using var sink = SnapshotFileSink.Create(path, Info(parent), fsync: false, Scenario.FixedTime, id);
        foreach (var (p, data) in pages) sink.WritePages(0, p, data ?? new byte[Page]);
        sink.Complete(state ?? State);
        sink.SnapshotId.Should().NotBe(Guid.Empty);
        using var file = SnapshotFile.Open(path);
        file.TrailerChecksum.Should().Be(sink.TrailerChecksum, "the sink reports the trailer checksum it wrote");
        return (path, file.Identity);
    }

    /// <summary>A base with pages 0..29, then three links: each rewrites some pages, zeroes one, and adds one.</summary>
    private (string Tip, byte[]?[] Expected, List<string> Links) BuildChain()
    {
        var expected = new byte[]?[Pages];
        var basePages = Enumerable.Range(0, 30).Select(p => ((long)p, (byte[]?)Content(p, 0))).ToList();
        foreach (var (p, d) in basePages) expected[p] = d;
        var (path, parent) = Write("base.mvs", null, basePages);
        var links = new List<string> { path };
        for (int g = 1; g <= 3; g++)
        {
            var changes = new List<(long, byte[]?)>
            {
                (g, Content(g, g)),           // rewritten
                (g + 10, null),               // became zero: must override the parent
                (30 + g, Content(30 + g, g)), // new
                (5, Content(5, g)),           // rewritten in every link: the newest wins
            };
            foreach (var (p, d) in changes) expected[p] = d;
            (path, parent) = Write($"link{g}.mvs", parent, changes);
            links.Add(path);
        }
        return (path, expected, links);
    }

    private static void AssertImage(ISnapshotPages image, byte[]?[] expected)
    {
        var page = new byte[Page];
        for (long p = 0; p < Pages; p++)
        {
            image.ReadPages(0, p, page);
            if (expected[p] is { } want) page.Should().Equal(want, $"page {p}");
            else page.Should().OnlyContain(b => b == 0, $"page {p} is zero");
        }
        // Whole-range reads split by owner must agree with page reads.
        var all = new byte[Pages * Page];
        image.ReadPages(0, 0, all);
        for (long p = 0; p < Pages; p++)
            all.AsSpan((int)(p * Page), Page).ToArray().Should().Equal(expected[p] ?? new byte[Page], $"page {p} in a range read");
    }

    [Fact]
    public void A_link_names_its_parent_by_id_and_trailer_checksum_and_keeps_changed_zero_pages()
    {
        var (basePath, baseId) = Write("base.mvs", null, [(0, Content(0, 0)), (1, Content(1, 0))]);
        var (linkPath, _) = Write("link.mvs", baseId, [(1, null), (2, Content(2, 1))]);
        using var link = SnapshotFile.Open(linkPath);
        link.FormatVersion.Should().Be(SnapshotFormat.CurrentVersion);
        link.Parent.Should().Be(baseId);
        link.IsIncremental.Should().BeTrue();
        link.IsPresent(0, 0).Should().BeFalse("page 0 did not change: it is the parent's");
        link.IsPresent(0, 1).Should().BeTrue("a page that became zero is stored, so it overrides the parent");
        link.PageChecksum(0, 1).Should().Be(System.IO.Hashing.XxHash3.HashToUInt64(new byte[Page]));
        link.Verify().IsValid.Should().BeTrue();
        link.Describe().Should().Contain(baseId.SnapshotId.ToString());
        using var full = SnapshotFile.Open(basePath);
        // A link lists checksums of its present pages only; a full snapshot has a slot for every page.
        (full.TrailerLength - link.TrailerLength).Should().Be((Pages - 2) * 8);
        full.Parent.Should().BeNull();
        full.IsPresent(0, 5).Should().BeFalse();
    }

    [Fact]
    public void A_chain_serves_each_page_from_the_newest_link_that_has_it()
    {
        var (tip, expected, links) = BuildChain();
        using var chain = SnapshotChain.Open(tip);
        chain.Links.Select(l => l.Path).Should().Equal(Enumerable.Reverse(links));
        chain.Base.IsIncremental.Should().BeFalse();
        AssertImage(chain, expected);
        chain.OwnerOf(0, 5).Should().Be(0, "page 5 was rewritten by the tip");
        chain.OwnerOf(0, 20).Should().Be(3, "page 20 only the base has");
        chain.OwnerOf(0, 39).Should().Be(-1, "page 39 was never written");
    }

    [Fact]
    public void A_merged_chain_is_one_full_snapshot_with_the_same_image()
    {
        var (tip, expected, _) = BuildChain();
        using var chain = SnapshotChain.Open(tip);
        var result = SnapshotMerge.Merge(chain, _dir.File("merged.mvs"), fsync: false);
        result.LinksMerged.Should().Be(4);
        using var merged = SnapshotFile.Open(result.Path);
        merged.IsIncremental.Should().BeFalse();
        merged.Sections.Should().BeEquivalentTo(chain.Tip.Sections);
        merged.Verify().IsValid.Should().BeTrue();
        AssertImage(merged, expected);
        merged.PresentPages(0).Should().Be(expected.Count(e => e is not null), "zero pages become holes again");
        File.Exists(result.Path + SnapshotFormat.PartialSuffix).Should().BeFalse();
    }

    [Fact]
    public void Prune_bounds_the_chain_keeps_its_image_and_deletes_only_unneeded_links()
    {
        var (tip, expected, links) = BuildChain(); // base + 3 links
        var result = SnapshotPrune.Prune(_dir.Root, keep: 2, fsync: false);
        result.Relinked.Should().Equal(links[3]);
        result.Deleted.Should().BeEquivalentTo([links[2], links[1], links[0]]);
        result.MergedInto.Should().Equal(new[] { links[2] }, "the merged base takes the name of the link it replaces");
        using (var chain = SnapshotChain.Open(tip))
        {
            chain.Links.Should().HaveCount(2);
            chain.Base.IsIncremental.Should().BeFalse();
            AssertImage(chain, expected);
        }
        SnapshotPrune.Prune(_dir.Root, keep: 2, fsync: false).MergedInto.Should().BeEmpty("the chain is short enough now");
        var one = SnapshotPrune.Prune(_dir.Root, keep: 1, fsync: false);
        one.MergedInto.Should().Equal(tip);
        using (var full = SnapshotFile.Open(tip))
        {
            full.IsIncremental.Should().BeFalse();
            AssertImage(full, expected);
        }
        Directory.GetFiles(_dir.Root).Should().Equal(tip);
    }

    [Fact]
    public void Prune_keeps_a_link_that_another_chain_branches_off()
    {
        var (tip, expected, links) = BuildChain();
        SnapshotParent fork;
        using (var l1 = SnapshotFile.Open(links[1])) fork = l1.Identity;
        var (branch, _) = Write("branch.mvs", fork, [(9, Content(9, 7))]);
        var branchExpected = (byte[]?[])expected.Clone();
        using (var before = SnapshotChain.Open(branch))
            for (long p = 0; p < Pages; p++)
            {
                var page = new byte[Page];
                before.ReadPages(0, p, page);
                branchExpected[p] = page.All(b => b == 0) ? null : page;
            }
        // The branch is processed first (name order): link1 stays while link2 still names it, then goes with link2's chain.
        var result = SnapshotPrune.Prune(_dir.Root, keep: 2, fsync: false);
        result.MergedInto.Should().HaveCount(2);
        using (var chain = SnapshotChain.Open(tip))
        {
            chain.Links.Should().HaveCount(2);
            AssertImage(chain, expected);
        }
        using (var b = SnapshotChain.Open(branch))
        {
            b.Links.Should().HaveCount(2, "the branch was pruned to two links as well");
            AssertImage(b, branchExpected);
        }
        Directory.GetFiles(_dir.Root).Should().HaveCount(4, "two tips and their two merged bases; every folded link went");
    }

    [Fact]
    public void Merging_into_a_link_of_the_chain_is_refused()
    {
        var (tip, _, links) = BuildChain();
        using var chain = SnapshotChain.Open(tip);
        var act = () => SnapshotMerge.Merge(chain, links[0], fsync: false);
        act.Should().Throw<ArgumentException>().WithMessage("*link of the chain*");
    }

    [Fact]
    public void A_missing_parent_is_refused_naming_its_id_and_the_chain_dir_finds_it_elsewhere()
    {
        var (tip, expected, links) = BuildChain();
        string elsewhere = Directory.CreateDirectory(_dir.File("elsewhere")).FullName;
        string moved = Path.Combine(elsewhere, "base.mvs");
        File.Move(links[0], moved);
        var act = () => SnapshotChain.Open(tip);
        act.Should().Throw<SnapshotFormatException>().WithMessage("*parent*is missing*--chain-dir*");
        using var chain = SnapshotChain.Open(tip, [elsewhere]);
        chain.Base.Path.Should().Be(moved);
        AssertImage(chain, expected);
    }

    [Fact]
    public void A_parent_replaced_under_the_same_name_and_id_is_refused()
    {
        var (tip, _, links) = BuildChain();
        using (var old = SnapshotFile.Open(links[2])) // link2, the tip's parent
        {
            var parentOfOld = old.Parent;
            Write("link2.mvs", parentOfOld, [(7, Content(7, 99))], id: old.SnapshotId);
        }
        var act = () => SnapshotChain.Open(tip);
        act.Should().Throw<SnapshotFormatException>().WithMessage("*different content*replaced*");
    }

    [Fact]
    public void A_truncated_parent_is_refused_with_the_reason()
    {
        var (tip, _, links) = BuildChain();
        using (var f = File.Open(links[0], FileMode.Open)) f.SetLength(f.Length - 100);
        var act = () => SnapshotChain.Open(tip);
        act.Should().Throw<SnapshotFormatException>().WithMessage("*unusable*truncated*");
    }

    [Fact]
    public void Links_that_name_each_other_are_refused_as_a_cycle()
    {
        // The trailer does not cover the header's parent field, so two files can be made to name each other.
        var idA = Guid.NewGuid();
        var idB = Guid.NewGuid();
        var placeholder = new SnapshotParent(Guid.NewGuid(), 1);
        var (_, a) = Write("a.mvs", placeholder, [(1, Content(1, 1))], id: idA);
        var (_, b) = Write("b.mvs", a, [(2, Content(2, 1))], id: idB);
        var (pathA, a2) = Write("a.mvs", b, [(1, Content(1, 1))], id: idA);
        a2.Should().Be(a, "the same id and content give the same trailer");
        var act = () => SnapshotChain.Open(pathA);
        act.Should().Throw<SnapshotFormatException>().WithMessage("*cycle*");
    }

    [Fact]
    public void A_parent_of_another_memory_layout_is_refused()
    {
        string basePath = _dir.File("other.mvs");
        using (var sink = SnapshotFileSink.Create(basePath,
                   new SnapshotHeaderInfo("write-tracking", "{}", "Test CPU", [new SnapshotRegion(0, 2 * Pages * Page)]), fsync: false))
        {
            sink.WritePages(0, 0, Content(0, 0));
            sink.Complete(State);
        }
        SnapshotParent id;
        using (var f = SnapshotFile.Open(basePath)) id = f.Identity;
        var (tip, _) = Write("link.mvs", id, [(1, Content(1, 1))]);
        var act = () => SnapshotChain.Open(tip);
        act.Should().Throw<SnapshotFormatException>().WithMessage("*different memory layouts*");
    }

    [Fact]
    public void A_format_2_0_file_without_a_parent_field_still_reads()
    {
        // Rewrite a full 2.1 file's header as 2.0 wrote it: no parent field, minor 0, shorter header, new checksum.
        var (path, _) = Write("old.mvs", null, [(3, Content(3, 0))]);
        var bytes = File.ReadAllBytes(path);
        int length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        int p = 80;
        p += 2 + System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(p));
        p += 2 + System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(p));
        p += 4 + (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p));
        p += SnapshotFormat.SnapshotIdSize; // the parent field starts here
        bytes.AsSpan(p, 24).ToArray().Should().OnlyContain(b => b == 0, "a full snapshot's parent field is zero");
        var header = bytes.AsSpan(0, length).ToArray().ToList();
        header.RemoveRange(p, 24);
        var old = header.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(old.AsSpan(10), 0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(old.AsSpan(12), (uint)old.Length);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(old.AsSpan(old.Length - 8),
            System.IO.Hashing.XxHash3.HashToUInt64(old.AsSpan(0, old.Length - 8)));
        Array.Clear(bytes, 0, length);
        old.CopyTo(bytes, 0);
        File.WriteAllBytes(path, bytes);
        using var file = SnapshotFile.Open(path);
        file.FormatVersion.Should().Be("2.0");
        file.Parent.Should().BeNull();
        file.Verify().IsValid.Should().BeTrue();
        using var chain = SnapshotChain.Open(path);
        var page = new byte[Page];
        chain.ReadPages(0, 3, page);
        page.Should().Equal(Content(3, 0));
    }

    [Fact]
    public void A_link_whose_trailer_length_does_not_match_its_present_pages_is_refused()
    {
        var (basePath, baseId) = Write("base.mvs", null, [(0, Content(0, 0))]);
        var (linkPath, _) = Write("link.mvs", baseId, [(1, Content(1, 1)), (2, Content(2, 1))]);
        var bytes = File.ReadAllBytes(linkPath);
        // Header field at 56: trailer length. One checksum slot more than the two present pages need.
        long declared = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(56));
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(56), declared + 8);
        int length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(length - 8),
            System.IO.Hashing.XxHash3.HashToUInt64(bytes.AsSpan(0, length - 8)));
        File.WriteAllBytes(linkPath, bytes);
        var act = () => SnapshotFile.Open(linkPath);
        act.Should().Throw<SnapshotFormatException>();
        File.Exists(basePath).Should().BeTrue();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_chain_with_a_random_byte_flipped_in_a_link_is_read_or_refused_never_crashes(int seed)
    {
        var (tip, expected, links) = BuildChain();
        var rng = new Random(seed);
        var originals = links.ToDictionary(l => l, File.ReadAllBytes);
        for (int trial = 0; trial < 60; trial++)
        {
            string victim = links[rng.Next(links.Count)];
            var bytes = (byte[])originals[victim].Clone();
            // Mostly the small parts (header, state, trailer, marker), sometimes the page area.
            long stateOffset = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(32));
            int at = rng.Next(4) == 0 ? rng.Next(bytes.Length)
                : rng.Next(2) == 0 ? rng.Next(SnapshotFormat.HeaderAreaSize / 64) : (int)stateOffset + rng.Next((int)(bytes.Length - stateOffset));
            bytes[at] ^= (byte)(1 << rng.Next(8));
            File.WriteAllBytes(victim, bytes);
            try
            {
                using var chain = SnapshotChain.Open(tip);
                var page = new byte[Page];
                for (long p = 0; p < Pages; p++)
                {
                    chain.ReadPages(0, p, page);
                    if (expected[p] is { } want) page.Should().Equal(want, $"trial {trial}: a flip that was not refused must not change page {p}");
                    else page.Should().OnlyContain(b => b == 0);
                }
            }
            catch (SnapshotFormatException) { } // refused with a reason: fine
            File.WriteAllBytes(victim, originals[victim]);
        }
    }

    [Fact]
    public void A_stream_destination_refuses_an_incremental_link()
    {
        var act = () => SnapshotStreamSink.Create(new MemoryStream(), Info(new SnapshotParent(Guid.NewGuid(), 5)));
        act.Should().Throw<NotSupportedException>();
    }

    /// <summary>The chain's files as objects under <c>vms/</c>, with unrelated neighbours.</summary>
    private static MemoryObjectStore StoreOf(IEnumerable<string> files)
    {
        var store = new MemoryObjectStore();
        foreach (string f in files) store.PutAsync("b", "vms/" + Path.GetFileName(f), File.ReadAllBytes(f), default).GetAwaiter().GetResult();
        store.PutAsync("b", "vms/notes.txt", "not a snapshot"u8.ToArray(), default).GetAwaiter().GetResult();
        store.PutAsync("b", "other/x.mvs", new byte[100], default).GetAwaiter().GetResult();
        return store;
    }

    private static SnapshotChain OpenInStore(MemoryObjectStore store, string key)
    {
        var uri = new ObjectUri("b", key);
        var tip = SnapshotFile.Open(ObjectStoreBytes.Open(store, uri), uri.ToString());
        using var parents = new ObjectStoreParents(store, () => store, uri, cacheDirectory: null);
        return SnapshotChain.Resolve(tip, parents);
    }

    [Fact]
    public void A_chain_in_an_object_store_resolves_among_the_tips_neighbours_by_content()
    {
        var (_, expected, links) = BuildChain();
        var store = StoreOf(links);
        using var chain = OpenInStore(store, "vms/link3.mvs");
        chain.Links.Select(l => l.Path).Should().Equal("s3://b/vms/link3.mvs", "s3://b/vms/link2.mvs", "s3://b/vms/link1.mvs", "s3://b/vms/base.mvs");
        AssertImage(chain, expected);
    }

    [Fact]
    public async Task A_missing_or_replaced_parent_in_the_store_is_refused_with_the_reason()
    {
        var (_, _, links) = BuildChain();
        var missing = StoreOf(links.Where(l => !l.EndsWith("link2.mvs")));
        FluentActions.Invoking(() => OpenInStore(missing, "vms/link3.mvs")).Should().Throw<SnapshotFormatException>()
            .WithMessage("*parent*is missing*s3://b/vms/*same key prefix*");

        // link2 replaced by another snapshot that claims its id: found, then refused by its content.
        var replaced = StoreOf(links);
        Guid originalId;
        using (var original = SnapshotFile.Open(links[2])) originalId = original.SnapshotId;
        {
            var (impostor, _) = Write("impostor.mvs", null, [(0L, Content(0, 99))], id: originalId);
            await replaced.PutAsync("b", "vms/link2.mvs", File.ReadAllBytes(impostor), default);
        }
        FluentActions.Invoking(() => OpenInStore(replaced, "vms/link3.mvs")).Should().Throw<SnapshotFormatException>()
            .WithMessage("*unusable*different content*");

        var down = StoreOf(links);
        var uri = new ObjectUri("b", "vms/link3.mvs");
        var tip = SnapshotFile.Open(ObjectStoreBytes.Open(down, uri), uri.ToString());
        down.Down = true;
        using var parents = new ObjectStoreParents(down, () => down, uri, cacheDirectory: null);
        FluentActions.Invoking(() => SnapshotChain.Resolve(tip, parents)).Should().Throw<ObjectStoreException>()
            .Where(e => e.Unreachable, "an unreachable store is not a bad snapshot");
    }

    public void Dispose() => _dir.Dispose();
}
